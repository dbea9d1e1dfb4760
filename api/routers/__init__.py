"""Every router the API serves: each module in this package that defines `router` (one TMF API,
or one /bss-api area) is mounted, behind the bearer-token check.

Routers are mounted in name order, except that a module may set `MATCH_FIRST = True` to be
mounted first: FastAPI, and the tracing middleware naming the request's span, try the routes in
mount order, a few microseconds each, so a path served last pays for every route before it
(about 130). Only a router whose paths no other router serves may say so (usage ingestion, posted
hundreds of times a second); for any other path the order changes nothing.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "router", None), APIRouter):
            found.append((not getattr(module, "MATCH_FIRST", False), module.router))
    return [router for _, router in sorted(found, key=lambda f: f[0])]


ROUTERS = discover()
