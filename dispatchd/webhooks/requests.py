"""What is posted to a destination for one stored event: the body and the headers.

A webhook gets the event's JSON (``events.schema.json``) signed (``signing``); Slack gets Block Kit
and Teams an Adaptive Card (``domain.chat_messages``). Every request carries ``Idempotency-Key``
equal to the event id: a resend after a crash is recognisably the same event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dispatchd import __version__
from dispatchd.config import Destination
from dispatchd.domain.chat_messages import slack_message, teams_message
from dispatchd.domain.events import with_links
from dispatchd.webhooks.signing import SIGNATURE_HEADER, signature_header

USER_AGENT = f"dispatchd/{__version__} (webhooks)"


def request_for(destination: Destination, event: Mapping[str, Any], web_base_url: str | None,
                timestamp: int) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the POST that delivers ``event`` (the stored JSON) to ``destination``."""
    linked = with_links(event, web_base_url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Idempotency-Key": str(event["id"]), "Dispatchd-Event": str(event["type"])}
    if destination.kind == "slack":
        return _json(slack_message(linked)), headers
    if destination.kind == "teams":
        return _json(teams_message(linked)), headers
    body = _json(linked)
    secret = destination.signing.reveal() if destination.signing else None
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret.encode(), timestamp, body)
    return body, headers


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
