"""Job events: duplicates, conflicts, late starts, overlaps, and what the ledger is given."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.engine.model import ExplicitJob
from gateway.inputs.jobevents import JobBook
from gateway.inputs.protocol import JobEvent

TZ = ZoneInfo("Europe/Berlin")
H = 3_600_000
T0 = 1_793_692_800_000  # 2026-11-03 08:00 UTC, 09:00 local


def ev(event: str, job: str, t: int, **kw: object) -> JobEvent:
    customer = kw.get("customer", "ACME" if event == "start" else None)
    parts = kw.get("parts", 5 if event == "stop" else None)
    return JobEvent(event, job, t, customer, parts, "button-1")  # type: ignore[arg-type]


def test_a_redelivered_event_is_a_duplicate_another_time_a_conflict() -> None:
    book = JobBook(TZ)
    assert book.apply("mill", ev("start", "J-1", T0)) == "jobs"
    assert book.apply("mill", ev("start", "J-1", T0)) == "job_duplicates"
    assert book.apply("mill", ev("start", "J-1", T0 + 5)) == "job_conflict"
    assert book.apply("mill", ev("stop", "J-1", T0 - 1)) == "job_conflict"  # before its start
    assert book.counts == {"jobs": 1, "job_duplicates": 1, "job_conflict": 2}


def test_a_stop_waits_for_its_late_start() -> None:
    book = JobBook(TZ)
    book.apply("mill", ev("stop", "J-1", T0 + H))
    assert book.take({"mill": T0 + 2 * H}, ["mill"]) == {}  # not a job without its start
    book.apply("mill", ev("start", "J-1", T0))
    # The stop's count of good parts goes with the job to the ledger.
    assert book.take({}, []) == {"mill": [[ExplicitJob("J-1", T0, T0 + H, "ACME", 5)]]}


def test_an_open_job_ends_just_after_the_newest_reading_and_blocks_overlaps() -> None:
    book = JobBook(TZ)
    book.apply("mill", ev("start", "J-1", T0))
    assert book.take({"mill": T0 + 600_000}, []) == {
        "mill": [[ExplicitJob("J-1", T0, T0 + 600_001, "ACME")]]
    }
    assert book.apply("mill", ev("start", "J-2", T0 + H)) == "job_overlap"  # J-1 still runs
    assert book.apply("lathe", ev("start", "J-2", T0 + H)) == "jobs"  # another machine: fine
    # With new readings the open job's end moves on; without, nothing is handed over.
    assert book.take({"mill": T0 + H}, ["mill"])["mill"][0][0].end_ms == T0 + H + 1
    assert "mill" not in book.take({"mill": T0 + H}, [])


def test_every_job_of_the_days_touched_is_handed_over() -> None:
    book = JobBook(TZ)
    for k in range(3):
        book.apply("mill", ev("start", f"J-{k}", T0 + k * H))
        book.apply("mill", ev("stop", f"J-{k}", T0 + k * H + 600_000))
    book.take({}, [])
    book.apply("mill", ev("start", "J-9", T0 + 30 * H))  # the next day, late evening
    book.apply("mill", ev("stop", "J-9", T0 + 40 * H))  # ... to the morning after
    ((handed,),) = book.take({}, []).values()
    assert [j.job_id for j in handed] == ["J-9"]  # the other days are not touched
    book.apply("mill", ev("start", "J-3", T0 + 3 * H))
    book.apply("mill", ev("stop", "J-3", T0 + 3 * H + 60_000))
    ((handed,),) = book.take({}, []).values()
    assert [j.job_id for j in handed] == ["J-0", "J-1", "J-2", "J-3"]  # its whole day
    # Changes on days far apart: two groups, so the days between keep what they have.
    book.apply("mill", ev("stop", "J-9", T0 + 40 * H))  # a duplicate: changes nothing
    book.apply("mill", ev("start", "J-20", T0 + 20 * 24 * H))
    book.apply("mill", ev("start", "J-4", T0 + 4 * H))
    book.apply("mill", ev("stop", "J-4", T0 + 5 * H))
    (groups,) = book.take({"mill": T0 + 20 * 24 * H + H}, []).values()
    assert [[j.job_id for j in g] for g in groups] == [
        ["J-0", "J-1", "J-2", "J-3", "J-4"],
        ["J-20"],
    ]


def test_the_book_survives_a_restart() -> None:
    book = JobBook(TZ)
    book.apply("mill", ev("start", "J-1", T0))
    again = JobBook(TZ)
    again.load(book.dump())
    assert again.apply("mill", ev("start", "J-1", T0)) == "job_duplicates"
    assert again.apply("mill", ev("stop", "J-1", T0 + H)) == "jobs"
    assert book.dump() == []  # dumped already: nothing changed since


def test_a_late_start_before_a_known_job_ends_where_that_job_starts() -> None:
    book = JobBook(TZ)
    book.apply("mill", ev("start", "J-2", T0 + 2 * H))
    book.apply("mill", ev("stop", "J-2", T0 + 3 * H))
    assert book.apply("mill", ev("start", "J-1", T0)) == "jobs"  # its stop is still on the way
    ((handed,),) = book.take({"mill": T0 + 5 * H}, []).values()
    assert [(j.job_id, j.start_ms, j.end_ms) for j in handed] == [
        ("J-1", T0, T0 + 2 * H),  # open, but not past the next job: jobs never overlap
        ("J-2", T0 + 2 * H, T0 + 3 * H),
    ]


def test_events_older_than_two_months_are_refused_and_old_jobs_forgotten() -> None:
    book = JobBook(TZ)
    book.apply("mill", ev("start", "J-old", T0))
    book.apply("mill", ev("stop", "J-old", T0 + H))
    later = T0 + 70 * 24 * H
    book.apply("mill", ev("start", "J-new", later))
    assert book.apply("mill", ev("start", "J-late", T0 + 2 * H)) == "job_too_old"
    groups = book.take({}, [])["mill"]
    assert [[j.job_id for j in g] for g in groups] == [["J-old"], ["J-new"]]
    # J-old is forgotten: a redelivery of its start would be refused, never re-created.
    assert book.apply("mill", ev("start", "J-old", T0)) == "job_too_old"
    assert book.counts["job_too_old"] == 2


def _card(event: str, job: str, t: int, uid: str) -> JobEvent:
    """A job event of the sensor's card reader (uid) or job button (uid "")."""
    customer = "" if event == "start" and not uid else None
    return JobEvent(event, job, t, customer, None, "s1", uid)  # type: ignore[arg-type]


def test_the_card_of_a_job_is_kept_and_survives_a_restart() -> None:
    book = JobBook(TZ)
    book.apply("mill", _card("start", "J-1", T0, "04A1B2C3"))
    book.apply("mill", _card("stop", "J-1", T0 + H, ""))  # stopped with the button
    book.apply("mill", _card("stop", "J-2", T0 + 3 * H, "DEADBEEF"))  # its start comes late
    book.apply("mill", _card("start", "J-2", T0 + 2 * H, ""))
    book.apply("mill", _card("start", "J-3", T0 + 4 * H, "04A1B2C3D4E5F6"))
    rows = book.dump()
    assert {row[1]: row[7] for row in rows} == {
        "J-1": "04A1B2C3",
        "J-2": "DEADBEEF",
        "J-3": "04A1B2C3D4E5F6",
    }
    again = JobBook(TZ)
    again.load(rows)
    again.apply("mill", _card("stop", "J-3", T0 + 5 * H, ""))
    assert [(row[1], row[3], row[7]) for row in again.dump()] == [
        ("J-3", T0 + 5 * H, "04A1B2C3D4E5F6")
    ]
