"""Real servers for tests: mosquitto, influxd and tiny local HTTP servers.

The server processes (mosquitto, influxd: free loopback ports, own temp folders, stopped
by PID, no orphans) and their `ServerPool` live in `agent.localservers`, shared with
`make stack-demo` and `bench/`; they are re-exported here. This module adds local HTTP
servers (test doubles of HTTP behaviour, and a v2 write front for influxd 1.x) to the pool
the fixtures use.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import agent.localservers
from agent.localservers import (
    LOOPBACK,
    Influxd,
    Mosquitto,
    ServerError,
    ServerProcess,
    find_binary,
    free_port,
    port_open,
    spawn,
)

__all__ = [
    "LOOPBACK",
    "HttpRequest",
    "HttpResponse",
    "Influxd",
    "LocalHttpServer",
    "Mosquitto",
    "ServerError",
    "ServerPool",
    "ServerProcess",
    "V2WriteFront",
    "find_binary",
    "free_port",
    "port_open",
    "spawn",
]


# -- tiny HTTP servers (test doubles of HTTP behaviour, and the v2 front) ---------------


@dataclass(frozen=True)
class HttpRequest:
    """What a LocalHttpServer received."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    """What a handler answers; a body without content type is sent as JSON/text as given."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


HttpHandler = Callable[[HttpRequest], HttpResponse]


class LocalHttpServer:
    """An HTTP/1.1 keep-alive server on 127.0.0.1 whose every answer comes from `handler`.

    Requests are recorded in `requests` (in arrival order) so a test can see what a
    client sent.
    """

    def __init__(self, handler: HttpHandler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = HttpRequest(
                    method=self.command,
                    path=url.path,
                    query=dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                with outer._lock:
                    outer.requests.append(req)
                resp = outer.handler(req)
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # tests read `requests`, not a log

        self._server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"http-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{LOOPBACK}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# InfluxDB 2.x precision names -> the v1 /write names.
_V1_PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


class V2WriteFront(LocalHttpServer):
    """`/api/v2/write` in front of an InfluxDB 1.x, mapped the way InfluxDB 1.8+ does.

    `bucket=db/rp` (or `db`) becomes `db=..&rp=..`, the v2 precision names become v1's,
    `Authorization: Token user:password` becomes u/p, and errors come back as v2 JSON
    (`{"code", "message"}`) with the status and Retry-After of the 1.x answer. It exists
    because Debian's influxd 1.6.7 has no v2 endpoint and no InfluxDB 2 installs here.
    """

    def __init__(self, influxd: Influxd) -> None:
        self.influxd = influxd
        self._local = threading.local()  # one keep-alive connection per server thread
        super().__init__(self._route)

    def _route(self, req: HttpRequest) -> HttpResponse:
        if req.path in ("/ping", "/health"):
            return HttpResponse(204 if req.path == "/ping" else 200, b'{"status":"pass"}')
        if req.method != "POST" or req.path != "/api/v2/write":
            return _v2_error(404, "not found", f"{req.method} {req.path}")
        db, _, rp = req.query.get("bucket", "").partition("/")
        precision = _V1_PRECISION.get(req.query.get("precision", "ns"))
        if not db or precision is None:
            return _v2_error(400, "invalid", f"bad bucket or precision in {req.query}")
        params = {"db": db, "precision": precision} | ({"rp": rp} if rp else {})
        auth = req.headers.get("authorization", "")
        if auth.startswith("Token ") and ":" in auth:
            params["u"], _, params["p"] = auth.removeprefix("Token ").partition(":")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if "content-encoding" in req.headers:
            headers["Content-Encoding"] = req.headers["content-encoding"]
        return self._forward("/write?" + urllib.parse.urlencode(params), req.body, headers)

    def _forward(self, path: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        try:
            status, retry_after, payload = self._post(path, body, headers)
        except OSError:
            # A keep-alive connection influxd closed (e.g. it restarted): reconnect once.
            try:
                status, retry_after, payload = self._post(path, body, headers)
            except OSError as err:
                return _v2_error(503, "unavailable", f"influxd unreachable: {err}")
        if status == 204:
            return HttpResponse(204)
        try:
            message = str(json.loads(payload).get("error", payload.decode()))
        except ValueError:
            message = payload.decode(errors="replace")
        return _v2_error(
            status, "invalid", message, {"Retry-After": retry_after} if retry_after else {}
        )

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        conn: HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = HTTPConnection(LOOPBACK, self.influxd.http_port, timeout=30)
        try:
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            return resp.status, resp.headers.get("Retry-After", ""), resp.read()
        except (OSError, HTTPException) as err:
            conn.close()
            self._local.conn = None
            raise OSError(f"POST {path}: {err!r}") from err


def _v2_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    body = json.dumps({"code": code, "message": message}).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json", **(headers or {})})


class ServerPool(agent.localservers.ServerPool):
    """The servers of one test, plus local HTTP servers (test doubles and the v2 front)."""

    def http(self, handler: HttpHandler) -> LocalHttpServer:
        """A local HTTP server answering every request with `handler(request)`."""
        server = LocalHttpServer(handler)
        self.closers.append(server.close)
        return server

    def v2_front(self, influxd: Influxd) -> V2WriteFront:
        """An `/api/v2/write` front (InfluxDB 1.8+ style) for `influxd`."""
        front = V2WriteFront(influxd)
        self.closers.append(front.close)
        return front
