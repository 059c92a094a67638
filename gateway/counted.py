"""A count with its noun in the right number, for log and summary lines ("1 sensor")."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """'1 sensor', '0 sensors', '2 sensors'; `plural` for nouns that do not just add an s."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
