"""A thin client of an OpenAI-compatible chat endpoint: one POST to ``{url}/chat/completions``.

aiohttp because it is already here (``webhooks/http.py``) and gives what a call to someone
else's server needs: one total time limit that covers connecting, sending and reading the
whole reply, no redirects unless asked, nothing taken from the environment (no proxy, no
.netrc). One call is one request: no retries here, the job decides when to try again
(``flows/second_opinion``). Deterministic answers are asked for (``temperature: 0``) as a JSON
object (``response_format``), which Ollama, llama.cpp's server, vLLM and the hosted APIs honour.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from dispatchd import __version__
from dispatchd.errors import ChatRefused, ChatReplyMalformed, ChatTimeout, ChatUnreachable

USER_AGENT = f"dispatchd/{__version__} (second opinion)"
MAX_REPLY_BYTES = 256 * 1024  # a verdict is a few hundred bytes; more is not a reply to us
_KEPT_DETAIL = 200  # characters of an error body kept for the log


class ChatClient:
    """``complete(messages)`` → the assistant's text, or a ``ChatEndpointError``."""

    def __init__(self, url: str, model: str, timeout: float, api_key: str | None = None):
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self._api_key = api_key

    def __repr__(self) -> str:  # never the key
        return f"ChatClient({self.endpoint!r}, {self.model!r}, timeout={self.timeout:g})"

    async def complete(self, messages: Sequence[dict[str, str]]) -> str:
        """POST the conversation; the first choice's message content. Raises ChatTimeout (no
        whole reply in ``timeout`` seconds), ChatUnreachable, ChatRefused (any status but 200)
        or ChatReplyMalformed (a 200 that is no chat completion)."""
        body = {"model": self.model, "messages": list(messages), "temperature": 0,
                "response_format": {"type": "json_object"}, "stream": False}
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        limits = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=limits, trust_env=False,
                                             cookie_jar=aiohttp.DummyCookieJar()) as session:
                async with session.post(self.endpoint, json=body, headers=headers, allow_redirects=False) as response:
                    raw = await _read_capped(response)
                    if response.status != 200:
                        raise ChatRefused(response.status, _excerpt(raw))
        except asyncio.TimeoutError as exc:
            raise ChatTimeout(f"no whole reply within {self.timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ChatUnreachable(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise ChatUnreachable(exc.strerror or str(exc)) from exc
        if len(raw) > MAX_REPLY_BYTES:
            raise ChatReplyMalformed(f"a reply of more than {MAX_REPLY_BYTES} bytes")
        return message_content(raw)


def message_content(raw: bytes) -> str:
    """``choices[0].message.content`` of a chat completion's body; ChatReplyMalformed otherwise."""
    try:
        envelope: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChatReplyMalformed(f"not JSON: {_excerpt(raw)!r}") from exc
    choices = envelope.get("choices") if isinstance(envelope, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ChatReplyMalformed(f"no choices[0].message.content: {_excerpt(raw)!r}")
    return content


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first MAX_REPLY_BYTES + 1 bytes: a server streaming without end is cut
    off here (and by the total time limit), not held in memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            break
    return b"".join(chunks)[:MAX_REPLY_BYTES + 1]


def _excerpt(raw: bytes) -> str:
    return " ".join(raw[:_KEPT_DETAIL * 4].decode("utf-8", "replace").split())[:_KEPT_DETAIL]
