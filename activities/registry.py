"""Every activity the worker runs, bound to the process's runtime (database, adapters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def build_activities(runtime: Any) -> list[Callable[..., Any]]:
    return []
