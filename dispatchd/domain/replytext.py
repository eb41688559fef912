"""The new part of a reply: quoted text and signatures removed (Gmail, Outlook, Apple Mail,
Thunderbird and localized 'On … wrote:' styles), using mail-parser-reply."""

from __future__ import annotations

from mailparser_reply import EmailReplyParser

_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "pl", "cs", "da", "ja", "zh", "ko"]


def latest_reply(text: str) -> str:
    """The text the sender wrote themselves, without what they quoted."""
    if not text.strip():
        return ""
    try:
        parser = EmailReplyParser(languages=_LANGUAGES)
        reply = parser.parse_reply(text=text)
    except Exception:  # the library's regexes on hostile input: keep the whole text
        return text.strip()
    return (reply or "").strip() or text.strip()
