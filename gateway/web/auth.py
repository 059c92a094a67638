"""Who is logged in: argon2id password hashes, server-side sessions, CSRF tokens, and a
login limiter that slows down guessing.

Sessions live in the server's memory: a restart logs everyone out, which on a shop's
gateway is a feature (nothing to steal from the SD card) and costs one login.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.ledger.users import Role

# argon2-cffi's defaults (RFC 9106 "low memory": 64 MiB, 3 passes): a Pi 4 verifies in
# ~0.2 s, an attacker with the users table pays the same per guess.
_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so a login takes as long for an
# unknown name as for a wrong password (no user enumeration by timing).
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))

SESSION_S = 12 * 3600  # a shift; the kiosk logs in again each morning
FREE_FAILURES = 5  # failed logins allowed before the limiter steps in
WINDOW_S = 15 * 60  # failures older than this are forgotten
FIRST_WAIT_S = 30.0  # wait after the sixth failure, doubled with each further one
MAX_WAIT_S = 15 * 60.0
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    """An argon2id hash (salt and parameters inside the string)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Does the password match the stored hash (None: no such user, always False)?"""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in user."""

    user: str
    role: Role
    csrf: str  # every form of the session carries it
    expires: float


class Sessions:
    """Session id -> Session, in memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def open(self, user: str, role: Role) -> str:
        """A new session id for a user who just logged in."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires > now}
            self._by_id[sid] = Session(user, role, secrets.token_urlsafe(32), now + SESSION_S)
        return sid

    def get(self, sid: str | None) -> Session | None:
        """The live session of that id, else None."""
        with self._lock:
            found = self._by_id.get(sid or "")
        return found if found and found.expires > self._clock() else None

    def close(self, sid: str | None) -> None:
        """Log out."""
        with self._lock:
            self._by_id.pop(sid or "", None)


class Limiter:
    """Failed logins per user name and per client address.

    After FREE_FAILURES failures in WINDOW_S, every attempt for that name or from that
    address is refused until a wait has passed, FIRST_WAIT_S doubling per further failure:
    a person who mistyped waits half a minute, a guesser gets a handful of tries an hour.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def wait_s(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: now)."""
        now = self._clock()
        with self._lock:
            return max((self._wait(k, now) for k in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        fails = [t for t in self._fails.get(key, []) if now - t < WINDOW_S]
        self._fails[key] = fails
        extra = len(fails) - FREE_FAILURES
        if extra < 0:
            return 0.0
        wait = min(FIRST_WAIT_S * 2.0**extra, MAX_WAIT_S)
        return max(fails[-1] + wait - now, 0.0)

    def failed(self, *keys: str) -> None:
        """Count a failed attempt."""
        now = self._clock()
        with self._lock:
            for key in keys:
                self._fails.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        """A correct login clears its counters."""
        with self._lock:
            for key in keys:
                self._fails.pop(key, None)
