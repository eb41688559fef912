"""config.toml as typed, frozen values, validated once at start.

Every refusal names the file, the line and the key (see ``tomlfile``). Secrets are never
accepted inline: they come from an environment variable or a file, so config.toml can be
committed and shared.

One module per section: ``model`` (the frozen values), ``credentials`` (secrets, OAuth2),
``mailbox``, ``smtp``, ``web``, ``integrations`` (webhooks, Slack, Teams), ``business_calendar``, ``schedule``,
``people`` (clients, staff, queues), ``booking`` (CalDAV calendars for calls),
``second_opinion`` (an OpenAI-compatible chat endpoint for triage) and ``loader`` (``load_config``,
the remaining small sections and the checks across sections).
"""

from dispatchd.config.business_calendar import WEEKDAYS
from dispatchd.config.credentials import TLS_MODES
from dispatchd.config.loader import load_config
from dispatchd.config.model import (BookingConfig, CalendarConfig, Client, Config, Destination, IntakeConfig,
                                    MailboxConfig, Queue, SecondOpinionConfig, Secret, SecurityConfig, SmtpConfig,
                                    Staff, WebConfig)
from dispatchd.config.people import ROLES
from dispatchd.config.schedule import DEFAULT_SCHEDULE

__all__ = ["DEFAULT_SCHEDULE", "ROLES", "TLS_MODES", "WEEKDAYS", "BookingConfig", "CalendarConfig", "Client", "Config",
           "Destination", "IntakeConfig", "MailboxConfig", "Queue", "SecondOpinionConfig", "Secret", "SecurityConfig",
           "SmtpConfig", "Staff", "WebConfig", "load_config"]
