"""InfluxDB writers: one small interface (connect / write a batch / close), two write paths.

- `V1Writer`: POST /write over one keep-alive HTTP connection (InfluxDB 1.x, 2.x with a
  DBRP mapping, 3.x). No dependency beyond the standard library.
- `V2Writer`: the v2 API through `influxdb-client` (InfluxDB 2.x, and 1.8+ where the
  bucket is "database/retention_policy").

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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


class V1Writer:
    """POST /write?db=..&rp=..&precision=ms over one keep-alive connection."""

    def __init__(self, cfg: InfluxDB, secret: Secret | None = None) -> None:
        parts = urllib.parse.urlsplit(cfg.url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        params = {"db": cfg.database, "precision": "ms"} | (
            {"rp": cfg.retention_policy} if cfg.retention_policy else {}
        )
        self._path = parts.path.rstrip("/") + "/write?" + urllib.parse.urlencode(params)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.gzip:
            self._headers["Content-Encoding"] = "gzip"
        if secret is not None:
            # 1.x: user/password as Basic auth; 2.x/3.x: the token (`Token` works for both).
            user_pw = f"{cfg.username}:{secret.reveal()}".encode()
            self._headers["Authorization"] = (
                "Basic " + base64.b64encode(user_pw).decode()
                if cfg.username
                else f"Token {secret.reveal()}"
            )
        self._timeout_s = cfg.timeout_s
        self._compress = cfg.gzip
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"V1Writer({self._netloc}{self._path})"

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


class V2Writer:
    """The v2 write API through influxdb-client's synchronous WriteApi."""

    def __init__(self, cfg: InfluxDB, secret: Secret | None = None) -> None:
        self._url, self._bucket, self._org = cfg.url, cfg.bucket, cfg.org or "-"
        # InfluxDB 1.8 takes "user:password" as the token.
        token = secret.reveal() if secret is not None else ""
        self._token = Secret(f"{cfg.username}:{token}" if cfg.username else token)
        self._timeout_ms = int(cfg.timeout_s * 1000)
        self._compress = cfg.gzip
        self._client: Any = None
        self._api: Any = None

    def __repr__(self) -> str:
        return f"V2Writer({self._url}, bucket={self._bucket})"

    def connect(self) -> None:
        """Create the client; it connects on the first write."""
        # Imported here, not at the top: influxdb-client and its urllib3/dateutil stack
        # cost ~13 MB of RSS that a gateway on the default v1 path never uses.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        # retries=False (the default): the drainer owns retries, backoff and splitting.
        self._client = InfluxDBClient(
            url=self._url,
            token=self._token.reveal(),
            org=self._org,
            timeout=self._timeout_ms,
            enable_gzip=self._compress,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes, meanwhile: Callable[[], None] | None = None) -> WriteResult:
        """One write; ApiException carries InfluxDB's status, anything else is no answer."""
        if meanwhile is not None:
            meanwhile()  # the client has no hook between request and answer
        if self._api is None:
            self.connect()
        # Already loaded by connect(): these imports are dictionary look-ups.
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(self._bucket, self._org, body, WritePrecision.MS)
        except ApiException as err:
            headers: Mapping[str, str] = err.headers or {}
            return WriteResult(
                int(err.status or NO_ANSWER),
                _error_text(err.body.encode() if isinstance(err.body, str) else err.body or b""),
                parse_retry_after(headers.get("Retry-After")),
            )
        except Exception as err:  # urllib3 raises many types for "no answer"; none is data
            return WriteResult(NO_ANSWER, f"{type(err).__name__}: {err}")
        return WriteResult(204)

    def close(self) -> None:
        """Close the client and its connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = self._api = None


def open_writer(cfg: InfluxDB, config_dir: Path) -> Writer:
    """The writer [influxdb] asks for, with its secret read from file or environment."""
    secret = read_secret(cfg, config_dir)
    writer: Writer = (V1Writer if cfg.api == "v1" else V2Writer)(cfg, secret)
    writer.connect()
    return writer
