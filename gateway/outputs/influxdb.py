"""The InfluxDB writer: one small interface (connect / write a batch / close), two write APIs.

`HttpWriter` POSTs line protocol over one keep-alive HTTP connection, with the standard
library only: api "v1" to /write (InfluxDB 1.x, 2.x with a DBRP mapping, 3.x), api "v2" to
/api/v2/write (InfluxDB 2.x, 3.x, and 1.8+ where the bucket is "database/retention_policy").

A writer never retries and never raises for a failed write: it reports what InfluxDB
answered (or 0 when nothing answered) and the drainer decides (gateway/outputs/drain.py).
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway import secrets
from gateway.config import InfluxDB
from gateway.secrets import Secret

NO_ANSWER = 0  # WriteResult.status when the request got no HTTP answer at all


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write request got back."""

    status: int  # HTTP status, or NO_ANSWER (refused, reset, timed out)
    message: str = ""  # InfluxDB's error text (or the transport error)
    retry_after_s: float | None = None  # from a Retry-After header (429/503)

    @property
    def ok(self) -> bool:
        """InfluxDB acknowledged the whole batch."""
        return 200 <= self.status < 300


class Writer(Protocol):
    """Connect once, write batches of line protocol, close."""

    def connect(self) -> None:
        """Prepare the connection (cheap; a dead server shows up in write())."""
        ...

    def write(self, body: bytes, meanwhile: Callable[[], None] | None = None) -> WriteResult:
        """POST newline-separated lines (ms precision); never raises for a failed write.

        `meanwhile` is work to overlap with InfluxDB's handling of the request; it is
        called exactly once, before write() returns.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def read_secret(cfg: InfluxDB, config_dir: Path) -> Secret | None:
    """The token/password from [influxdb] secret_file or secret_env; None when neither."""
    return secrets.read_secret(cfg, config_dir, "influxdb")


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def _error_text(payload: bytes) -> str:
    """InfluxDB's message from an error body: 1.x {"error"}, 2.x/3.x {"message"}, or text."""
    text = payload.decode(errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:1000]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or text)[:1000]
    return text[:1000]


class HttpWriter:
    """POST line protocol over one keep-alive connection, to either write API.

    v1: `/write?db=..&rp=..&precision=ms`, Basic auth (user/password) or `Token`.
    v2: `/api/v2/write?bucket=..&org=..&precision=ms`, `Token` (InfluxDB 1.8 takes
    "user:password" as the token). As Telegraf does it: the two APIs differ only in the
    URL and the Authorization header, so no client library is needed for either.
    """

    def __init__(self, cfg: InfluxDB, secret: Secret | None = None) -> None:
        parts = urllib.parse.urlsplit(cfg.url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path = parts.path.rstrip("/") + _write_path(cfg)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.gzip:
            self._headers["Content-Encoding"] = "gzip"
        if secret is not None:
            self._headers["Authorization"] = _authorization(cfg, secret)
        self._timeout_s = cfg.timeout_s
        self._compress = cfg.gzip
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"HttpWriter({self._netloc}{self._path})"

    def connect(self) -> None:
        """Create the connection object; the TCP connection opens on the first write."""
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._conn = cls(self._netloc, timeout=self._timeout_s)

    def write(self, body: bytes, meanwhile: Callable[[], None] | None = None) -> WriteResult:
        """One POST; `meanwhile` runs between sending it and reading the answer."""
        if self._conn is None:
            self.connect()
        assert self._conn is not None
        payload = gzip.compress(body, compresslevel=1) if self._compress else body
        try:
            try:
                self._conn.request("POST", self._path, payload, self._headers)
            finally:
                if meanwhile is not None:
                    meanwhile()
            resp = self._conn.getresponse()
            answer = resp.read()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            return WriteResult(NO_ANSWER, f"{type(err).__name__}: {err}")
        if resp.will_close:
            self.close()
        if 200 <= resp.status < 300:
            return WriteResult(resp.status)
        return WriteResult(
            resp.status, _error_text(answer), parse_retry_after(resp.getheader("Retry-After"))
        )

    def close(self) -> None:
        """Close the connection (a later write reconnects)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _write_path(cfg: InfluxDB) -> str:
    """The write endpoint and its query string for [influxdb] api."""
    if cfg.api == "v1":
        params = {"db": cfg.database, "rp": cfg.retention_policy}
        endpoint = "/write"
    else:
        params = {"bucket": cfg.bucket, "org": cfg.org}
        endpoint = "/api/v2/write"
    given = {k: v for k, v in params.items() if v}  # no rp: the default; no org: 1.8, 3.x
    return endpoint + "?" + urllib.parse.urlencode(given | {"precision": "ms"})


def _authorization(cfg: InfluxDB, secret: Secret) -> str:
    """v1 with a username: Basic user:password; otherwise a token (`Token` works on 1.x-3.x),
    on v2 "user:password" as the token (InfluxDB 1.8's v2 API)."""
    if not cfg.username:
        return f"Token {secret.reveal()}"
    user_pw = f"{cfg.username}:{secret.reveal()}"
    if cfg.api == "v2":
        return f"Token {user_pw}"
    return "Basic " + base64.b64encode(user_pw.encode()).decode()


def open_writer(cfg: InfluxDB, config_dir: Path) -> Writer:
    """The writer [influxdb] asks for, with its secret read from file or environment."""
    secret = read_secret(cfg, config_dir)
    writer = HttpWriter(cfg, secret)
    writer.connect()
    return writer
