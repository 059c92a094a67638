"""mosquitto 2 password files: `user:$7$<iterations>$<salt>$<hash>`, PBKDF2-SHA512.

Written here rather than by `mosquitto_passwd -b`, which takes the password on its
command line, where every user of the machine can read it in `ps`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping

from gateway.secrets import Secret

# mosquitto_passwd uses 101. Sensor passwords are random (192 bits), so iterations add
# nothing there; they slow down guessing a human-chosen gateway password from a stolen
# file, at ~10 ms of broker CPU per CONNECT on a Raspberry Pi 4.
ITERATIONS = 10_000
_SALT_BYTES = 12  # what mosquitto_passwd writes
_HASH = re.compile(r"\$7\$(\d{1,7})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")


def hash_password(password: Secret, iterations: int = ITERATIONS) -> str:
    """The `$7$...` hash mosquitto 2 checks a CONNECT password against (fresh salt)."""
    salt = os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.reveal().encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def password_matches(password: Secret, hashed: str) -> bool:
    """True when `hashed` (a `$7$` hash) was made from `password`."""
    m = _HASH.fullmatch(hashed)
    if m is None:
        return False
    salt, expected = base64.b64decode(m[2]), base64.b64decode(m[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.reveal().encode(), salt, int(m[1]))
    return hmac.compare_digest(digest, expected)


def render_passwd(hashes: Mapping[str, str]) -> bytes:
    """The password file for {user: hash}, one line per user, sorted (stable diffs)."""
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes)).encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
