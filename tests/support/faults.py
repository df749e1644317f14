"""A failing server for tests: an HTTP proxy in front of a real one that answers chosen requests itself
with an error, as an overloaded or broken server would, and forwards everything else unchanged."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# The answer to a request (method, path without the query): (HTTP status, MLflow error code), or
# None to forward it.
Rule = Callable[[str, str], "tuple[int, str] | None"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


class FaultyProxy:
    """``with FaultyProxy(server.uri, rule) as proxy:`` serves on ``proxy.uri`` until the block ends.

    ``proxy.failed`` lists the (method, path) of every request it answered with an error.
    """

    def __init__(self, target: str, rule: Rule):
        self.target, self.rule = target.rstrip("/"), rule
        self.failed: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as mlflow's client expects of a server

            def _answer(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                if (failure := proxy.rule(self.command, path)) is not None:
                    proxy.failed.append((self.command, path))
                    status, code = failure
                    self._send(status, {"Content-Type": "application/json"},
                               json.dumps({"error_code": code, "message": f"injected failure of {path}"}).encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                response = requests.request(self.command, proxy.target + self.path, headers=headers, data=body,
                                            allow_redirects=False, timeout=120)
                self._send(response.status_code,
                           {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP},
                           response.content)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
                self.rfile.readline()  # the empty line after the last
                return b"".join(chunks)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
                pass  # quiet: pytest shows what matters

        return Handler
