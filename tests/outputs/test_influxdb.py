"""[influxdb] config, secrets and the writer's two APIs: right request, secret never shown."""

from __future__ import annotations

import base64
import gzip
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.config import InfluxDB, parse_config
from gateway.errors import ConfigError
from gateway.outputs.influxdb import (
    HttpWriter,
    Secret,
    open_writer,
    parse_retry_after,
    read_secret,
)
from tests.servers import HttpResponse, Influxd, ServerPool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop.toml"


def _config(tmp_path: Path, **influxdb: Any) -> Any:
    with EXAMPLE.open("rb") as fh:
        data = tomllib.load(fh)
    data["influxdb"] = influxdb
    return parse_config(data, tmp_path / "shop.toml")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "http://h:8086"}, "influxdb: api 'v1' needs database"),
        ({"url": "http://h:8086", "api": "v2", "database": "d"}, "api 'v2' needs bucket"),
        ({"url": "ftp://h", "database": "d"}, "influxdb.url = 'ftp://h'"),
        (
            {"url": "http://h", "database": "d", "secret_file": "f", "secret_env": "E"},
            "secret_file or secret_env, not both",
        ),
        ({"url": "http://h", "database": "d", "username": "u"}, "needs secret_file or"),
        ({"url": "http://h", "database": "d", "token": "abc"}, "influxdb.token: unknown key"),
    ],
)
def test_bad_influxdb_sections_name_the_key(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        _config(tmp_path, **section)
    assert "abc" not in str(err.value)


def test_secret_from_a_file_next_to_the_config_or_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "influx.token").write_text("s3cret-token\n")
    (tmp_path / "influx.token").chmod(0o600)  # a group/world-readable secret is refused
    cfg = _config(tmp_path, url="http://h", database="d", secret_file="influx.token")
    secret = read_secret(cfg.influxdb, cfg.source.parent)
    assert secret is not None and secret.reveal() == "s3cret-token"
    assert "s3cret" not in repr(secret) + str(secret)

    monkeypatch.setenv("SHOPWATT_INFLUX_TOKEN", "env-token")
    cfg = _config(tmp_path, url="http://h", database="d", secret_env="SHOPWATT_INFLUX_TOKEN")
    secret = read_secret(cfg.influxdb, cfg.source.parent)
    assert secret is not None and secret.reveal() == "env-token"


def test_a_missing_secret_names_the_key_not_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    cfg = _config(tmp_path, url="http://h", database="d", secret_env="NO_SUCH_TOKEN_VAR")
    with pytest.raises(ConfigError, match=r"influxdb.secret_env = 'NO_SUCH_TOKEN_VAR'"):
        read_secret(cfg.influxdb, tmp_path)
    cfg = _config(tmp_path, url="http://h", database="d", secret_file="missing.token")
    with pytest.raises(ConfigError, match=r"influxdb.secret_file = 'missing.token': cannot read"):
        read_secret(cfg.influxdb, tmp_path)


def test_v1_writer_sends_database_precision_auth_and_gzip(
    tmp_path: Path, servers: ServerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = servers.http(lambda req: HttpResponse(204))
    monkeypatch.setenv("INFLUX_PW", "pa:ss")
    cfg = _config(
        tmp_path,
        url=stub.url + "/influx/",
        database="shop floor",
        retention_policy="one_year",
        username="gw",
        secret_env="INFLUX_PW",
        gzip=True,
    )
    writer = open_writer(cfg.influxdb, tmp_path)
    assert "pa:ss" not in repr(writer)
    assert writer.write(b"m v=1 1\nm v=2 2").ok
    writer.close()
    req = stub.requests[0]
    assert (req.method, req.path) == ("POST", "/influx/write")
    assert req.query == {"db": "shop floor", "rp": "one_year", "precision": "ms"}
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"gw:pa:ss").decode()
    assert gzip.decompress(req.body) == b"m v=1 1\nm v=2 2"


def test_v1_writer_sends_a_token_and_reports_influxdb_errors(servers: ServerPool) -> None:
    stub = servers.http(
        lambda req: HttpResponse(
            429, b'{"code":"too many","message":"slow down"}', {"Retry-After": "3"}
        )
    )
    writer = HttpWriter(InfluxDB(url=stub.url, database="d"), Secret("tok"))
    result = writer.write(b"m v=1 1")
    assert (result.status, result.message, result.retry_after_s) == (429, "slow down", 3.0)
    assert stub.requests[0].headers["authorization"] == "Token tok"


def test_v2_api_is_the_v2_url_and_a_token_header(
    tmp_path: Path, servers: ServerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = servers.http(lambda req: HttpResponse(204))
    monkeypatch.setenv("INFLUX_TOKEN", "t0k")
    cfg = _config(
        tmp_path, url=stub.url, api="v2", bucket="shop", org="acme", secret_env="INFLUX_TOKEN"
    )
    writer = open_writer(cfg.influxdb, tmp_path)
    assert writer.write(b"m v=1 1").ok
    writer.close()
    req = stub.requests[0]
    assert (req.method, req.path) == ("POST", "/api/v2/write")
    assert req.query == {"bucket": "shop", "org": "acme", "precision": "ms"}
    assert req.headers["authorization"] == "Token t0k"
    assert req.body == b"m v=1 1"


def test_v2_api_writes_through_the_1_8_mapping_with_user_and_password(
    tmp_path: Path, servers: ServerPool, influxd: Influxd, influx_db: str
) -> None:
    # Debian's influxd 1.6.7 has no /api/v2/write and no InfluxDB 2 can be installed here:
    # the front maps the v2 API onto /write the way InfluxDB 1.8 does.
    front = servers.v2_front(influxd)
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "pw").chmod(0o600)
    cfg = _config(
        tmp_path,
        url=front.url,
        api="v2",
        bucket=f"{influx_db}/autogen",
        username="gw",
        secret_file="pw",
    )
    writer = open_writer(cfg.influxdb, tmp_path)
    assert writer.write(b"m v=1 1700000000000").status == 204
    bad = writer.write(b"m v=")
    writer.close()
    assert bad.status == 400 and "unable to parse" in bad.message
    assert influxd.rows("SELECT v FROM m", influx_db) == [{"time": 1700000000000, "v": 1}]
    assert front.requests[0].headers["authorization"] == "Token gw:secret"
    assert "org" not in front.requests[0].query  # 1.8 and 3.x have no organisations


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now_s=1445412480.0) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
