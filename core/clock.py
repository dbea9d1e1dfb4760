"""The business clock.

Every piece of business time (price windows, card expiry, renewal due dates, quarantine ends)
reads `clock.now()`, never `datetime.now()`, so tests can freeze and advance time. Workflow code
uses `workflow.now()` instead, which Temporal keeps deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class BusinessClock:
    def __init__(self) -> None:
        self._frozen_at: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        if self._frozen_at is not None:
            return self._frozen_at
        return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime | None = None) -> datetime:
        at = at or self.now()
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        self._frozen_at = at
        return at

    def advance(self, delta: timedelta) -> datetime:
        if self._frozen_at is not None:
            self._frozen_at += delta
        else:
            self._offset += delta
        return self.now()

    def reset(self) -> None:
        self._frozen_at = None
        self._offset = timedelta()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


clock = BusinessClock()
