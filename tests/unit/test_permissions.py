import pytest

from dispatchd.domain.permissions import Actor, TaskScope, refusal

TASK = TaskScope(queue="content", assignee="ana@agency.test", client="Acme")
ANA = Actor("ana@agency.test", "producer", ("content",))
PAT = Actor("pat@agency.test", "producer", ("design",))
BEN = Actor("ben@agency.test", "lead", ("content",))
LEO = Actor("leo@agency.test", "lead", ("dev",))
MORGAN = Actor("morgan@agency.test", "manager", ())
BOB = Actor("bob@acme.test", "client", client="Acme")
CARLA = Actor("carla@globex.test", "client", client="Globex")

MATRIX = {
    #            start  review approve deliver close  confirm revise assign priority take  note   status type   cancel
    "ANA":      (True,  True,  False,  False,  False, False,  False, False, False,   True, True,  True,  False, False),
    "PAT":      (False, False, False,  False,  False, False,  False, False, False,   False, False, False, False, False),
    "BEN":      (True,  True,  True,   True,   True,  False,  True,  True,  True,    True, True,  True,  True,  True),
    "LEO":      (False, False, False,  False,  False, False,  False, False, False,   False, False, False, False, False),
    "MORGAN":   (True,  True,  True,   True,   True,  True,   True,  True,  True,    True, True,  True,  True,  True),
    "BOB":      (False, False, False,  False,  False, True,   True,  False, False,   False, True,  True,  False, False),
    "CARLA":    (False, False, False,  False,  False, False,  False, False, False,   False, False, False, False, False),
}
COMMANDS = ("start", "review", "approve", "deliver", "close", "confirm", "revise", "assign", "priority", "take",
            "note", "status", "type", "cancel")
ACTORS = {"ANA": ANA, "PAT": PAT, "BEN": BEN, "LEO": LEO, "MORGAN": MORGAN, "BOB": BOB, "CARLA": CARLA}


@pytest.mark.parametrize("who", list(MATRIX))
def test_permission_matrix(who: str) -> None:
    got = tuple(refusal(ACTORS[who], command, TASK) is None for command in COMMANDS)
    assert got == MATRIX[who], dict(zip(COMMANDS, got))


def test_producer_may_work_on_a_task_assigned_to_them_elsewhere() -> None:
    elsewhere = TaskScope(queue="revision", assignee="ana@agency.test", client="Acme")
    assert refusal(ANA, "start", elsewhere) is None
    assert refusal(ANA, "take", elsewhere) == "revision is not one of your queues"


def test_refusals_say_why() -> None:
    assert refusal(BOB, "close", TASK) == "a client may not close"
    assert refusal(CARLA, "confirm", TASK) == "this is not your task"
    assert refusal(LEO, "assign", TASK) == "content is not one of your queues"
