"""Secrets come from a private file or a named environment variable, and never leak."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gateway.config import Mqtt
from gateway.errors import ConfigError
from gateway.secrets import MAX_SECRET_BYTES, Secret, read_secret, read_secret_file

TOKEN = "tok-9f8e7d6c5b4a"


def _file(tmp_path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "mqtt.password"
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


def test_a_private_file_next_to_the_config_is_read_without_its_newline(tmp_path: Path) -> None:
    _file(tmp_path, TOKEN + "\n")
    cfg = Mqtt(username="gw", secret_file="mqtt.password")
    secret = read_secret(cfg, tmp_path, "mqtt")
    assert secret is not None and secret.reveal() == TOKEN


def test_an_environment_variable_named_in_the_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPWATT_MQTT_PASSWORD", TOKEN)
    secret = read_secret(Mqtt(username="gw", secret_env="SHOPWATT_MQTT_PASSWORD"), tmp_path, "mqtt")
    assert secret is not None and secret.reveal() == TOKEN


def test_no_secret_configured_means_none(tmp_path: Path) -> None:
    assert read_secret(Mqtt(), tmp_path, "mqtt") is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_a_file_that_group_or_others_can_read_or_write_is_refused(
    tmp_path: Path, mode: int
) -> None:
    path = _file(tmp_path, TOKEN, mode)
    with pytest.raises(ConfigError) as err:
        read_secret(Mqtt(username="gw", secret_file="mqtt.password"), tmp_path, "mqtt")
    message = str(err.value)
    assert message.startswith("mqtt.secret_file = 'mqtt.password': ")
    assert f"mode {mode:04o}" in message and f"chmod 600 {path}" in message
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("\n  \n", "is empty"),
        (b"\xff\xfe" + b"x" * 10, "is not UTF-8 text"),
        ("x" * (MAX_SECRET_BYTES + 1), f"longer than {MAX_SECRET_BYTES} bytes"),
    ],
)
def test_a_file_that_holds_no_usable_secret_says_why(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = _file(tmp_path, content)
    with pytest.raises(ConfigError, match=re.escape(expected)) as err:
        read_secret_file(path, "influxdb.secret_file = 'x'")
    assert "xxxxxxxx" not in str(err.value)


def test_a_missing_file_or_a_folder_names_the_key_and_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^mqtt.secret_file = 'nope': cannot read .*nope"):
        read_secret(Mqtt(username="gw", secret_file="nope"), tmp_path, "mqtt")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_secret_file(tmp_path / "dir", "k")


def test_an_unset_environment_variable_names_the_variable_not_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPWATT_EMPTY", "  ")
    with pytest.raises(
        ConfigError, match=r"mqtt.secret_env = 'SHOPWATT_EMPTY': .*not set or empty"
    ):
        read_secret(Mqtt(username="gw", secret_env="SHOPWATT_EMPTY"), tmp_path, "mqtt")


def test_a_symlink_to_a_private_file_is_followed_and_checked_on_the_target(
    tmp_path: Path,
) -> None:
    target = _file(tmp_path, TOKEN)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert read_secret_file(link, "k").reveal() == TOKEN
    target.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 0644"):
        read_secret_file(link, "k")


def test_a_secret_never_shows_in_repr_str_format_or_an_exception() -> None:
    secret = Secret(TOKEN)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        repr([secret]),
        repr({"password": secret}),
    ]
    assert all(TOKEN not in s for s in shown)
    err = RuntimeError("connect failed", secret)
    assert TOKEN not in str(err) + repr(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = _file(tmp_path, TOKEN, 0o000)
    with pytest.raises(ConfigError, match=r"cannot read .*Permission denied"):
        read_secret_file(path, "k")
