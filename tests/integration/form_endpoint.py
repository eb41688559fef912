"""A form-encoded POST → JSON endpoint on loopback, as OAuth token and introspection servers are.

The test gives the answer: ``answer(path, form) -> (status, body)``; every form is recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

from dispatchd.devservers import free_port

Form = dict[str, list[str]]
Answer = Callable[[str, Form], tuple[int, dict[str, object]]]


class FormEndpoint:
    """Started by ``start()``, stopped by ``stop()``: a fixture owns both."""

    def __init__(self, answer: Answer) -> None:
        self.forms: list[Form] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                endpoint.forms.append(form)
                status, body = answer(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self._http = HTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FormEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
