"""`shopwatt web user add` and the users table: what is stored, what is refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from agent.serviceshop import write_config
from gateway.config import load_config
from gateway.ledger import Ledger
from gateway.ledger.schema import SCHEMA_VERSION, connect
from gateway.ledger.users import get_user
from gateway.web.auth import verify_password
from tests.ledger.shop import drop_billing_step


def _user_add(config: Path, name: str, role: str, stdin: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gateway", "web", "user", "add", name, "--role", role]
    return subprocess.run(
        [*argv, "--config", str(config)], input=stdin, text=True, capture_output=True, timeout=60
    )


def test_user_add_stores_an_argon2id_hash_and_audits_without_the_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, sensors={"mill": "s-mill"})
    done = _user_add(config, "owen", "owner", "a-long-secret-1\n")
    assert done.returncode == 0, done.stderr
    ledger = Ledger(load_config(config))
    user = get_user(ledger.path, "owen")
    assert user is not None and user.role == "owner"
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "a-long-secret-1")
    assert not verify_password(user.password_hash, "a-long-secret-2")
    entry = ledger.status(1).audit[0]
    assert entry.action == "user add"
    assert entry.detail == {"new": True, "role": "owner", "user": "owen"}
    for suffix in ("", "-wal"):
        stored = ledger.path.with_name(ledger.path.name + suffix)
        assert not stored.exists() or b"a-long-secret-1" not in stored.read_bytes()


def test_user_add_refuses_a_short_password_and_a_bad_role_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, sensors={"mill": "s-mill"})
    short = _user_add(config, "olga", "operator", "short\n")
    assert (short.returncode, short.stderr) == (
        2,
        "shopwatt: error: password for olga: at least 10 characters\n",
    )
    role = _user_add(config, "olga", "boss", "a-long-secret-1\n")
    assert role.returncode == 2 and len(role.stderr.splitlines()) == 1
    assert "'boss'" in role.stderr


def test_a_ledger_of_the_previous_schema_gains_the_users_table(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with closing(connect(path, create=True)) as conn:
        conn.execute("DROP TABLE users")
        drop_billing_step(conn)  # a later step's
        conn.execute("PRAGMA user_version = 1")
    with closing(connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'users'").fetchone()
