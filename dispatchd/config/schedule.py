"""[schedule]: when the periodic jobs run (crontab lines)."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

from dispatchd.tomlfile import Reader

DEFAULT_SCHEDULE = {
    "sla": "*/5 * * * *",
    "redispatch": "*/15 * * * *",
    "digest": "0 8 * * mon",
    "staff-digest": "30 8 * * mon-fri",
    "health": "0 8 * * mon-fri",
    "train": "30 2 * * *",
    "backup": "15 1 * * *",   # does nothing without [backup] dir
    "prune": "45 1 * * *",    # does nothing while every [retention] period is "never"
    "booking": "* * * * *",  # calls: proposals, bookings, retries, reminders (only with [booking])
    "second-opinion": "* * * * *",  # ask the chat endpoint about triage (only with [second_opinion])
}


def read_schedule(r: Reader) -> dict[str, str]:
    """Crontab lines per job; "" switches a job off."""
    schedule = dict(DEFAULT_SCHEDULE)
    for name in DEFAULT_SCHEDULE:
        value = r.str(name)
        if value is None:
            continue
        if not value.strip():
            schedule.pop(name)
            continue
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            r.problem(name, f"not a crontab line ({exc}); e.g. '*/5 * * * *' or '0 8 * * mon'")
            continue
        schedule[name] = value
    r.refuse_unknown()
    return schedule

