"""The HTTP client of integrations: one aiohttp session per destination.

Each destination has its own connection pool (``[[…]] concurrency`` connections at most) and its
own time limit per request, so a receiver that hangs holds only its own connections, never
another destination's or the mail's. Redirects are not followed, except a 307/308 to the same
scheme, host and port (a receiver moving a path); a redirect anywhere else is reported, not
taken: no request goes to anything but the configured URL's origin.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import aiohttp

from dispatchd.webhooks.outcomes import Answer, retry_after_seconds

MAX_SAME_ORIGIN_REDIRECTS = 3
_KEPT_BODY = 300  # characters of a refusal kept for `dispatchd integrations`


class HttpPoster:
    def __init__(self, concurrency: int, timeout: float):
        self.concurrency = concurrency
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 5.0)),
                # Nothing from the environment: no proxy, no .netrc credentials sent along.
                trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str], now: datetime) -> Answer:
        """POST ``body``; the answer (status None when there was none: refused, reset, timed out)."""
        origin = _origin(url)
        try:
            for _ in range(MAX_SAME_ORIGIN_REDIRECTS + 1):
                async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as response:
                    text = (await response.text(errors="replace"))[:_KEPT_BODY]
                    if response.status in (307, 308) and "Location" in response.headers:
                        target = urljoin(url, response.headers["Location"])
                        if _origin(target) == origin:
                            url = target
                            continue
                        scheme, host, port = _origin(target)
                        return Answer(response.status, f"redirected to {scheme}://{host}:{port}: not followed")
                    return Answer(response.status, f"{response.status} {response.reason or ''} {text}".strip(),
                                  retry_after_seconds(response.headers.get("Retry-After"), now))
            return Answer(None, "too many redirects")
        except asyncio.TimeoutError:
            return Answer(None, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            return Answer(None, _without(url, f"{type(exc).__name__}: {exc}"))
        except OSError as exc:
            return Answer(None, _without(url, f"{exc.strerror or exc}"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _without(url: str, detail: str) -> str:
    """A Slack or Teams URL is a credential: an error kept or logged names only its origin."""
    scheme, host, port = _origin(url)
    return detail.replace(url, f"{scheme}://{host}:{port}/…")[:_KEPT_BODY]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)
