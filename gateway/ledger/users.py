"""The web page's users: name, role and password hash, kept in the ledger's users table.

Hashing happens above (gateway/web/passwords.py): the ledger stores what it is given and
records every change in the audit trail.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from gateway.errors import LedgerError
from gateway.ledger.audit import Entry, record
from gateway.ledger.schema import connect, transaction

Role = Literal["operator", "accountant", "owner"]
ROLES: tuple[Role, ...] = ("operator", "accountant", "owner")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class User:
    """One person who may log in."""

    name: str
    role: Role
    password_hash: str


def check_name(name: str) -> str:
    """A user name: 1..64 letters, digits, `._@-`; anything else is a LedgerError."""
    if not _NAME.match(name):
        raise LedgerError(f"user name {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_role(role: str) -> Role:
    """One of ROLES, else a LedgerError naming the value."""
    if role not in ROLES:
        raise LedgerError(f"--role = {role!r}: expected one of {', '.join(ROLES)}")
    return role


def put_user(ledger: Path, user: User, at: str, who: str) -> bool:
    """Add the user or replace its role and hash; True when it is new. Audited."""
    check_name(user.name)
    check_role(user.role)
    with closing(connect(ledger, create=True)) as conn, transaction(conn):
        new = conn.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone() is None
        conn.execute(
            "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?)",
            (user.name, user.role, user.password_hash, at, who),
        )
        # The hash never goes into the trail: only who, what role, new or changed.
        detail = {"user": user.name, "role": user.role, "new": new}
        record(conn, Entry(at, who, "user add" if new else "user change", detail))
    return new


def get_user(ledger: Path, name: str) -> User | None:
    """The user of that name, or None (also when there is no ledger yet)."""
    if not ledger.exists():
        return None
    with closing(connect(ledger)) as conn:
        found = conn.execute(
            "SELECT name, role, password_hash FROM users WHERE name = ?", (name,)
        ).fetchone()
    return User(found[0], cast(Role, found[1]), found[2]) if found else None


def list_users(ledger: Path) -> list[tuple[str, Role]]:
    """Every user's name and role, by name."""
    if not ledger.exists():
        return []
    with closing(connect(ledger)) as conn:
        found = conn.execute("SELECT name, role FROM users ORDER BY name").fetchall()
    return [(u[0], cast(Role, u[1])) for u in found]
