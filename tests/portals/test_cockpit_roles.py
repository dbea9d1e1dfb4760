"""Every cockpit route against every role: a table of route → least role, checked for csr,
supervisor and admin (below it: a 403 page naming the rule; at or above it: past the role check)
and with no session (a redirect to /login, for a form post too). A route missing from the table
fails the test, so a new page must say who may use it."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from tests.portals.cockpit_harness import (
    cheap_hashes,  # noqa: F401 (fixture)
    cockpit_client,
    csrf_of,
    operator,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashes")
RANK = {"csr": 0, "supervisor": 1, "admin": 2}
SAMPLE = {
    "customer_id": "CUST-00000000",
    "sub_id": "SUB-000000",
    "order_id": "ORD-000000",
    "ticket_id": "TKT-00000000",
    "case_id": "CASE-00000000",
    "port_id": "PORT-00000000",
    "code": "NOPE",
    "offering_id": "PLAN_NOPE",
    "operator_id": "OP-00000000",
    "change": "bogus",
}
# (method, route, form posted, least role). Unknown ids are fine: past the role check they are a
# 404 (or a 400 for a blank form), never a 403.
ROUTES = [
    ("GET", "/", {}, "csr"),
    ("GET", "/customers", {}, "csr"),
    ("GET", "/customers/{customer_id}", {}, "csr"),
    ("GET", "/lines/{sub_id}", {}, "csr"),
    ("POST", "/lines/{sub_id}/act", {"action": "topup", "vas": "VAS_DATA_1GB"}, "csr"),
    ("GET", "/orders", {}, "csr"),
    ("POST", "/orders/{order_id}/stuck", {"action": "retry"}, "supervisor"),
    ("GET", "/tickets", {}, "csr"),
    ("GET", "/tickets/{ticket_id}", {}, "csr"),
    ("POST", "/tickets/{ticket_id}", {"action": "note", "text": "hi"}, "csr"),
    ("GET", "/cases", {}, "csr"),
    ("GET", "/cases/{case_id}", {}, "csr"),
    ("POST", "/cases/{case_id}", {"action": "note", "text": "hi"}, "csr"),
    ("GET", "/porting", {}, "csr"),
    ("POST", "/porting/{port_id}", {"action": "approve"}, "supervisor"),
    ("GET", "/promotions", {}, "csr"),
    ("POST", "/promotions", {}, "supervisor"),
    ("POST", "/promotions/{code}/exhaust", {}, "supervisor"),
    ("GET", "/catalog", {}, "csr"),
    ("GET", "/admin/catalog", {}, "admin"),
    ("POST", "/admin/catalog/offerings", {}, "admin"),
    ("POST", "/admin/catalog/offerings/{offering_id}/prices", {}, "admin"),
    ("POST", "/admin/catalog/offerings/{offering_id}/retire", {}, "admin"),
    ("GET", "/admin/operators", {}, "admin"),
    ("POST", "/admin/operators", {}, "admin"),
    ("POST", "/admin/operators/{operator_id}/{change}", {}, "admin"),
]
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/health")}
# The modules this table speaks for; another module's routes (the chat panel's) are checked for
# the login redirect only, their roles by their own tests.
TABLED = {f"portals.cockpit.{m}" for m in ("app", "customers", "orders", "workbench", "porting")}
TABLED |= {f"portals.cockpit.{m}" for m in ("promotions", "catalog", "operators")}


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), template)


def _flat(routes) -> list[APIRoute]:
    out = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.16x)
            out += _flat(r.original_router.routes)
    return out


def _app_routes(app, tabled: bool | None = None) -> set[tuple[str, str]]:
    return {
        (method, r.path)
        for r in _flat(app.routes)
        if tabled is None or (r.endpoint.__module__ in TABLED) is tabled
        for method in r.methods
        if method in ("GET", "POST")
    }


async def test_every_route_checks_the_role_and_sends_nobody_to_login(settings, runtime):
    from portals.cockpit.app import create_app

    for role in RANK:
        await operator(runtime, f"{role}@example.com", role)
    app = create_app(settings, runtime)
    routes, mine = _app_routes(app), _app_routes(app, tabled=True)
    table = {(m, p) for m, p, _, _ in ROUTES}
    assert mine - PUBLIC - table == set(), "a cockpit route is missing from the role table"
    assert table - mine == set(), "the role table names a route the cockpit does not have"

    async with cockpit_client(settings, runtime) as nobody:
        for method, template in sorted(routes - PUBLIC):
            r = await nobody.request(method, _path(template), data={} if method == "POST" else None)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, template)

    for role, rank in RANK.items():
        async with cockpit_client(settings, runtime) as client:
            assert (await sign_in(client, f"{role}@example.com")).status_code == 303
            token = csrf_of((await client.get("/customers")).text)
            for method, template, form, least in ROUTES:
                path = _path(template)
                if method == "GET":
                    r = await client.get(path)
                else:
                    r = await client.post(path, data={**form, "csrf_token": token})
                where = (role, method, template, r.status_code)
                if rank < RANK[least]:
                    assert r.status_code == 403 and "cockpit.role.forbidden" in r.text, where
                else:
                    assert r.status_code not in (401, 403, 500) and not (
                        r.status_code == 303 and r.headers["location"].startswith("/login")
                    ), where
            # Still signed in after all that: nothing above ended the session.
            assert (await client.get("/")).status_code == 200
