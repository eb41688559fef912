"""The business calendar from config.toml: working days, hours, public and extra holidays."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import holidays

from dispatchd.config import CalendarConfig
from dispatchd.domain.sla import BusinessCalendar


def business_calendar(config: CalendarConfig) -> BusinessCalendar:
    public = (holidays.country_holidays(config.holidays_country, subdiv=config.holidays_subdivision)
              if config.holidays_country else {})
    closed = frozenset(config.closed_dates)

    def holiday_name(day: date) -> str | None:
        if day in closed:
            return "closed"
        name = public.get(day)
        return str(name) if name else None

    return BusinessCalendar(ZoneInfo(config.timezone), frozenset(config.workdays),
                            config.day_start, config.day_end, holiday_name)
