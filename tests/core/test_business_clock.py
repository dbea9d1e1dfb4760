"""The business clock: the per-process clock the test-suite moves, the file-backed clock a test
stack shares between its processes (`bss up --test-clock`), and the durations `bss clock` takes."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import BusinessClock, parse_duration
from core.errors import InvalidInput

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def two_processes(path: Path) -> tuple[BusinessClock, BusinessClock]:
    """The API's clock and the worker's: two clocks reading one file, as two processes would."""
    writer, reader = BusinessClock(), BusinessClock()
    writer.use_file(path)
    reader.use_file(path)
    return writer, reader


def test_the_process_clock_freezes_advances_and_resets_as_before():
    c = BusinessClock()
    assert abs(c.now() - datetime.now(UTC)) < timedelta(seconds=1) and not c.frozen
    assert c.freeze(T0) == T0 and c.frozen and c.now() == T0
    assert c.advance(timedelta(days=30)) == T0 + timedelta(days=30)
    c.reset()
    assert not c.frozen and abs(c.now() - datetime.now(UTC)) < timedelta(seconds=1)
    c.advance(timedelta(hours=2))  # not frozen: an offset on the wall clock
    assert abs(c.now() - datetime.now(UTC) - timedelta(hours=2)) < timedelta(seconds=1)


def test_a_second_reader_sees_freeze_advance_and_unfreeze(tmp_path: Path):
    writer, reader = two_processes(tmp_path / "clock.json")
    assert abs(reader.now() - datetime.now(UTC)) < timedelta(seconds=1)  # no file yet: wall clock

    writer.freeze(T0)
    assert reader.frozen and reader.now() == T0
    assert json.loads((tmp_path / "clock.json").read_text()) == {
        "frozen_at": T0.isoformat(),
        "offset_seconds": 0.0,
    }

    writer.advance(timedelta(days=30))
    assert reader.now() == T0 + timedelta(days=30)

    writer.unfreeze()  # runs again from where it stood, not from the wall clock
    assert not reader.frozen
    assert abs(reader.now() - (T0 + timedelta(days=30))) < timedelta(seconds=1)
    writer.advance(timedelta(hours=25))
    assert abs(reader.now() - (T0 + timedelta(days=31, hours=1))) < timedelta(seconds=1)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed over


def test_the_reader_rereads_only_when_the_file_is_replaced(tmp_path: Path):
    path = tmp_path / "clock.json"
    writer, reader = two_processes(path)
    writer.freeze(T0)
    assert reader.now() == T0
    # Rewrite the file in place, same size, same inode, same mtime: a reader that trusts its
    # cached state does not see it, which proves it does not read the file on every call.
    st = path.stat()
    later = T0.replace(hour=8)
    path.write_text(path.read_text().replace(T0.isoformat(), later.isoformat()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert reader.now() == T0
    writer.freeze(later)  # a real write replaces the file: seen at once
    assert reader.now() == later


def test_an_unreadable_file_keeps_the_last_state(tmp_path: Path):
    path = tmp_path / "clock.json"
    writer, reader = two_processes(path)
    writer.freeze(T0)
    assert reader.now() == T0
    tmp = tmp_path / "broken"
    tmp.write_text("{not json")
    os.replace(tmp, path)
    assert reader.now() == T0
    path.unlink()  # the file gone: the wall clock
    assert abs(reader.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_two_writers_never_lose_a_change(tmp_path: Path):
    first, second = two_processes(tmp_path / "clock.json")
    first.freeze(T0)

    def step(c: BusinessClock) -> None:
        for _ in range(40):
            c.advance(timedelta(minutes=1))

    threads = [threading.Thread(target=step, args=(c,)) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.now() == second.now() == T0 + timedelta(minutes=80)


def test_reset_goes_back_to_the_process_clock_and_leaves_the_file(tmp_path: Path):
    path = tmp_path / "clock.json"
    c = BusinessClock()
    c.use_file(path)
    c.freeze(T0)
    c.reset()
    assert not c.shared and not c.frozen
    assert json.loads(path.read_text())["frozen_at"] == T0.isoformat()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30d", timedelta(days=30)),
        ("25h", timedelta(hours=25)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 30D ", timedelta(days=30)),
        ("PT1H", timedelta(hours=1)),
        ("P30D", timedelta(days=30)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("pt1.5s", timedelta(seconds=1.5)),
        ("P2W", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "not a duration"),
        ("30", "not a duration"),
        ("d", "not a duration"),
        ("30 days", "not a duration"),
        ("-1d", "not a duration"),
        ("1d1d", "not a duration"),
        ("1.5h", "not a duration"),
        ("P", "not a duration"),
        ("PT", "not a duration"),
        ("P1DT", "not a duration"),
        ("P1M", "Months and years"),
        ("P1Y", "Months and years"),
        ("0d", "more than zero"),
        ("PT0S", "more than zero"),
        ("3661d", "at most 3660 days"),
        ("9" * 41, "not a duration"),
    ],
)
def test_bad_durations_are_refused_with_a_rule_code(text: str, says: str):
    with pytest.raises(InvalidInput) as err:
        parse_duration(text)
    assert err.value.code == "clock.duration.invalid"
    assert says in err.value.message
