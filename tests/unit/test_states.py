import pytest

from dispatchd.domain.models import Status
from dispatchd.domain.states import TRANSITIONS, Refusal, Transition, allowed_actions, apply

S = Status
LADDER = [
    (S.RECEIVED, "route", S.QUEUED),
    (S.QUEUED, "start", S.IN_PROGRESS),
    (S.IN_PROGRESS, "review", S.IN_REVIEW),
    (S.IN_REVIEW, "approve", S.READY_FOR_DELIVERY),
    (S.READY_FOR_DELIVERY, "deliver", S.DELIVERED),
    (S.DELIVERED, "confirm", S.CLOSED),
    (S.DELIVERED, "close", S.CLOSED),
    (S.IN_REVIEW, "revise", S.REVISIONS_NEEDED),
    (S.READY_FOR_DELIVERY, "revise", S.REVISIONS_NEEDED),
    (S.DELIVERED, "revise", S.REVISIONS_NEEDED),
    (S.REVISIONS_NEEDED, "start", S.IN_PROGRESS),
]


@pytest.mark.parametrize("source, action, target", LADDER)
def test_ladder(source: Status, action: str, target: Status) -> None:
    assert apply(source, action) == Transition(action, source, target)


def test_every_other_move_is_refused() -> None:
    legal = {(source, action) for source, action, _ in LADDER}
    for status in Status:
        for action in TRANSITIONS:
            result = apply(status, action)
            if action == "cancel":
                assert isinstance(result, Transition) == (status not in (S.CLOSED, S.CANCELLED))
            elif (status, action) in legal:
                assert isinstance(result, Transition)
            else:
                assert isinstance(result, Refusal), (status, action)


def test_work_never_moves_backwards_except_revisions() -> None:
    order = [S.RECEIVED, S.QUEUED, S.IN_PROGRESS, S.IN_REVIEW, S.READY_FOR_DELIVERY, S.DELIVERED, S.CLOSED]
    for action, moves in TRANSITIONS.items():
        for source, target in moves.items():
            if action in ("revise", "cancel") or source == S.REVISIONS_NEEDED:
                continue
            assert order.index(target) > order.index(source), (action, source, target)


def test_refusal_names_status_and_allowed_moves() -> None:
    refusal = apply(S.QUEUED, "deliver")
    assert isinstance(refusal, Refusal)
    assert str(refusal) == "cannot deliver a task that is queued; allowed now: start, cancel"
    assert str(apply(S.CLOSED, "start")) == "cannot start a task that is closed; allowed now: none (the task is finished)"
    assert allowed_actions(S.DELIVERED) == ("revise", "close", "confirm", "cancel")
