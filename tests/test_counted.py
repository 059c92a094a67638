"""Counts in log and summary lines: the noun in the right number."""

from gateway.counted import counted


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert [counted(n, "sensor") for n in (0, 1, 2)] == ["0 sensors", "1 sensor", "2 sensors"]
    assert counted(3, "failed attempt") == "3 failed attempts"
    assert counted(2, "batch", "batches") == "2 batches"
