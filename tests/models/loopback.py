"""A loopback HTTP server (127.0.0.1, a free port) serving files the test writes, with faults."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator


def hashed_name(stem: str, payload: bytes, suffix: str = ".pth") -> str:
    """``stem-<first 8 hex digits of the SHA-256>.pth``: torch.hub's naming."""
    return f"{stem}-{hashlib.sha256(payload).hexdigest()[:8]}{suffix}"


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self.release = threading.Event()  # lets stalled and held responses finish
        self.httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, mode: str, name: str) -> str:
        """mode: ok | cut (half the body, full Content-Length) | stall (headers, then nothing) |
        hold (half the body, the rest once released) | 500."""
        return f"{self.base}/{mode}/{name}"


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            _, mode, name = self.path.split("/", 2)
            server.requests[name] += 1
            if mode == "500":
                self.send_error(500, "Internal Server Error")
                return
            payload = server.files.get(name)
            if payload is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if mode == "stall":
                server.release.wait(30)
                return
            if mode == "cut":
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if mode == "hold":
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                server.release.wait(60)
                self.wfile.write(payload[len(payload) // 2 :])
                return
            self.wfile.write(payload)

    return Handler


@contextmanager
def serving() -> Iterator[Server]:
    server = Server()
    server.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.httpd.daemon_threads = True
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
