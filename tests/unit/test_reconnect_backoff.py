"""How the daemon waits and what it logs while its mail server is away."""

from dispatchd.daemon import Backoff


def test_delays_double_up_to_the_ceiling_and_start_over_after_a_success() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next() == 1


def test_a_routine_drop_is_a_warning_and_only_a_lasting_outage_an_error() -> None:
    backoff = Backoff()
    levels = []
    for _ in range(8):
        backoff.next()
        levels.append(backoff.log_level)
    assert levels == ["warning", "debug", "debug", "debug", "error", "debug", "debug", "debug"]
    backoff.reset()
    backoff.next()
    assert backoff.log_level == "warning"
