"""Imports every domain module, so SQLModel.metadata (and Alembic) sees the whole schema.

Discovery instead of a hand-kept list: a new table in any `domains/<context>/` module is
picked up by `make migration` and by the tests without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import domains


def load_all() -> None:
    for info in pkgutil.walk_packages(domains.__path__, prefix="domains."):
        if info.name.rsplit(".", 1)[-1] not in {"registry", "seeds"}:
            importlib.import_module(info.name)


load_all()
