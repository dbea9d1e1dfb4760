"""Explicit transition tables: (trigger, from) -> to. An illegal move is a policy violation."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import PolicyViolation


class StateMachine:
    def __init__(self, name: str, transitions: Iterable[tuple[str, str | Iterable[str], str]]) -> None:
        self.name = name
        self.table: dict[tuple[str, str], str] = {}
        for trigger, sources, target in transitions:
            for source in (sources,) if isinstance(sources, str) else sources:
                self.table[(trigger, source)] = target

    @property
    def states(self) -> set[str]:
        return {s for _, s in self.table} | set(self.table.values())

    def can(self, trigger: str, current: str) -> bool:
        return (trigger, current) in self.table

    def next(self, trigger: str, current: str, *, code: str | None = None) -> str:
        try:
            return self.table[(trigger, current)]
        except KeyError:
            allowed = sorted(t for (t, s) in self.table if s == current)
            raise PolicyViolation(
                code or f"{self.name}.transition.invalid",
                f"Cannot {trigger} a {self.name.replace('_', ' ')} that is {current}.",
                trigger=trigger,
                current=current,
                allowed_triggers=allowed,
            ) from None
