"""Files people uploaded, served so that none can act as a page of ours.

Whatever the sender claimed the type to be, a file goes out as ``application/octet-stream``
with ``Content-Disposition: attachment`` (the browser saves it, never renders it), ``nosniff``
(from ``SecurityHeaders``) and a sandboxing CSP: an HTML or SVG file with a script in it cannot
run in our origin and read a client's pages.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response


def download(filename: str, data: bytes) -> Response:
    """``data`` as a download named ``filename`` (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in filename)[:100] or "file"
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename[:200], safe='')}"
    return Response(data, media_type="application/octet-stream",
                    headers={"content-disposition": disposition,
                             "content-security-policy": "sandbox; default-src 'none'"})
