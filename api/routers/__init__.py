"""Every router the API serves: each module in this package that defines `router` (one TMF API,
or one /bss-api area) is mounted, behind the bearer-token check."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover() -> list[APIRouter]:
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "router", None), APIRouter):
            routers.append(module.router)
    return routers


ROUTERS = discover()
