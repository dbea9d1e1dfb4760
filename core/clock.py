"""The business clock.

Every piece of business time (price windows, card expiry, renewal due dates, quarantine ends)
reads `clock.now()`, never `datetime.now()`, so tests can freeze and advance time. Workflow code
uses `workflow.now()` instead, which Temporal keeps deterministic.

By default the clock belongs to its process: the test-suite freezes and advances the clock of the
test process. A test stack (`bss up --test-clock`, BSS_TEST_CLOCK) shares one clock between the
API and the worker through `<data dir>/clock.json` ({"frozen_at": iso | null, "offset_seconds": n}):
`clock.use_file(path)` switches to it, and `now()` then costs one stat, re-reading the file only
when it was replaced. Writers replace it atomically (temporary file + rename) under a lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger("bss.clock")


@dataclass(frozen=True)
class ClockState:
    frozen_at: datetime | None = None
    offset: timedelta = timedelta()

    def now(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        return datetime.now(UTC) + self.offset

    def frozen(self, at: datetime | None = None) -> ClockState:
        at = at or self.now()
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return ClockState(frozen_at=at)

    def advanced(self, delta: timedelta) -> ClockState:
        if self.frozen_at is not None:
            return ClockState(frozen_at=self.frozen_at + delta)
        return ClockState(offset=self.offset + delta)

    def unfrozen(self) -> ClockState:
        """Time runs again from where it stood: a frozen clock never jumps back to the wall clock."""
        if self.frozen_at is None:
            return self
        return ClockState(offset=self.frozen_at - datetime.now(UTC))

    def to_json(self) -> dict[str, object]:
        return {
            "frozen_at": self.frozen_at.isoformat() if self.frozen_at else None,
            "offset_seconds": self.offset.total_seconds(),
        }

    @classmethod
    def from_json(cls, data: dict) -> ClockState:
        frozen_at = data.get("frozen_at")
        at = datetime.fromisoformat(frozen_at) if frozen_at else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return cls(frozen_at=at, offset=timedelta(seconds=float(data.get("offset_seconds") or 0)))


class SharedClockFile:
    """The clock of a test stack, in one small JSON file every process of the stack reads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._state = ClockState()

    def state(self) -> ClockState:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._state = None, ClockState()
            return self._state
        # The inode too: every write is a new file renamed over the old one, so a change shows
        # even where the file system's mtime is coarser than two quick writes.
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._state = ClockState.from_json(json.loads(self.path.read_text()))
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.warning("%s is unreadable (%s); the clock keeps its last state", self.path, exc)
        return self._state

    def update(self, change: Callable[[ClockState], ClockState]) -> ClockState:
        """Read, change and replace the file under an exclusive lock, so two writers never lose one
        another's change."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._stamp = None  # read what is on disk now, not the cached state
            new = change(self.state())
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w") as out:
                json.dump(new.to_json(), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            self._stamp = None
        return new


class BusinessClock:
    def __init__(self) -> None:
        self._state = ClockState()
        self._file: SharedClockFile | None = None

    def use_file(self, path: Path | None) -> None:
        """Share the clock through `path` (a test stack), or back to this process's own clock."""
        self._file = SharedClockFile(path) if path is not None else None

    @property
    def shared(self) -> bool:
        return self._file is not None

    def state(self) -> ClockState:
        return self._file.state() if self._file is not None else self._state

    def now(self) -> datetime:
        shared = self._file
        return (shared.state() if shared is not None else self._state).now()

    def change(self, fn: Callable[[ClockState], ClockState]) -> ClockState:
        """Apply `fn` to the clock's state (under the file's lock when shared); the new state."""
        if self._file is not None:
            return self._file.update(fn)
        self._state = fn(self._state)
        return self._state

    def freeze(self, at: datetime | None = None) -> datetime:
        return self.change(lambda s: s.frozen(at)).now()

    def advance(self, delta: timedelta) -> datetime:
        return self.change(lambda s: s.advanced(delta)).now()

    def unfreeze(self) -> datetime:
        return self.change(ClockState.unfrozen).now()

    def reset(self) -> None:
        """This process's own clock at real time (the test-suite's reset; a shared file stays as is)."""
        self._file = None
        self._state = ClockState()

    @property
    def frozen(self) -> bool:
        return self.state().frozen_at is not None


clock = BusinessClock()


# --------------------------------------------------------------------------- durations

MAX_STEP = timedelta(days=3660)
_SHORT = re.compile(r"(\d{1,7})([wdhms])")
_ISO = re.compile(
    r"P(?:(?P<w>\d{1,6})W)?(?:(?P<d>\d{1,7})D)?"
    r"(?:T(?:(?P<h>\d{1,8})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,10}(?:\.\d{1,6})?)S)?)?"
)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """'30d', '25h', '90m', '45s', '2w', '1d12h' or ISO 8601 ('PT1H', 'P30D', 'P1DT2H') -> timedelta.

    A step forward only: more than zero and at most ten years. Months and years have no fixed
    length and are refused. Raises core.errors.InvalidInput (`clock.duration.invalid`).
    """
    from core.errors import InvalidInput

    raw = (text or "").strip()
    value = raw.upper() if raw[:1] in "pP" else raw.lower()
    delta: timedelta | None = None
    if len(value) <= 40 and value.startswith("P"):
        iso = _ISO.fullmatch(value)
        if iso and value not in ("P", "PT") and not value.endswith("T"):
            parts = iso.groupdict()
            delta = timedelta(
                weeks=int(parts["w"] or 0),
                days=int(parts["d"] or 0),
                hours=int(parts["h"] or 0),
                minutes=int(parts["m"] or 0),
                seconds=float(parts["s"] or 0),
            )
    elif len(value) <= 40 and value and _SHORT.sub("", value) == "":
        units = [u for _, u in _SHORT.findall(value)]
        if len(units) == len(set(units)):
            delta = timedelta(**{_UNITS[u]: int(n) for n, u in _SHORT.findall(value)})
    if delta is None:
        calendar = value.startswith("P") and ("Y" in value or "M" in value.split("T")[0])
        hint = " Months and years have no fixed length; give days, e.g. 30d." if calendar else ""
        raise InvalidInput(
            "clock.duration.invalid",
            f"{raw[:40]!r} is not a duration; use e.g. 30d, 25h, 90m, 1d12h or PT1H.{hint}",
        )
    if delta <= timedelta():
        raise InvalidInput("clock.duration.invalid", "The clock only moves forward: give more than zero.")
    if delta > MAX_STEP:
        raise InvalidInput("clock.duration.invalid", "Move the clock at most 3660 days at a time.")
    return delta
