"""Access by role: every operation of the OpenAPI with every role, tokens that can be revoked, and the
actor of the audit log (only a channel token may name one)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text

from api.permissions import TABLE, permits
from core.context import SYSTEM
from domains.access.rules import Role
from ops.access import create_token
from tests.conftest import TEST_TOKEN

CUSTOMER = "/tmf-api/customerManagement/v4/customer"
TOKENS = "/bss-api/v1/admin/token"
USAGE = "/tmf-api/usageManagement/v4/usage"


def customer_body(email: str = "ada@example.com") -> dict:
    return {
        "name": "Ada Lovelace",
        "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": email}}],
    }


async def issue(runtime, name: str, role: str) -> str:
    return (await create_token(runtime, SYSTEM, name, role))[1]


def as_token(api: httpx.AsyncClient, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refusal(r: httpx.Response, status: int, reason: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["@type"] == "Error" and body["reason"] == reason, body


def _concrete(path: str) -> str:
    # An id nothing has: an allowed request then ends in 404/400/422, a forbidden one in 403 first.
    return re.sub(r"\{[^/]+\}", "ZZ-NO-SUCH-1", path)


async def test_every_operation_answers_every_role_as_the_table_says(api, runtime):
    spec = (await api.get("/openapi.json")).json()
    operations = [
        (method.upper(), path, tuple(op.get("tags", ())))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path != "/health"
    ]
    assert len(operations) > 60
    tokens = {role: await issue(runtime, f"walk-{role.value}", role.value) for role in Role}
    wrong: list[str] = []
    for role, token in tokens.items():
        for method, path, tags in operations:
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            r = await api.request(method, _concrete(path), json=body, headers=as_token(api, token))
            allowed = permits(role, tags, method)
            if not allowed and (r.status_code != 403 or r.json().get("reason") != "auth.role.forbidden"):
                wrong.append(
                    f"{role.value} {method} {path}: expected 403, got {r.status_code} {r.text[:120]}"
                )
            if allowed and r.status_code in (401, 403) or r.status_code == 500:
                wrong.append(f"{role.value} {method} {path}: allowed, got {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


# What the issue says each role may and may not do, independently of how the table is written.
SPOT_CHECKS = [
    (Role.OPERATOR, "POST", CUSTOMER, True),
    (Role.OPERATOR, "POST", "/tmf-api/productOrderingManagement/v4/productOrder", True),
    (Role.OPERATOR, "POST", "/bss-api/v1/subscription/{id}/vas", True),
    (Role.OPERATOR, "POST", "/bss-api/v1/subscription/{id}/terminate", True),
    (Role.OPERATOR, "POST", "/bss-api/v1/provisioning/task/{id}/resolve", True),
    (Role.OPERATOR, "GET", "/tmf-api/usageManagement/v4/usage", True),
    (Role.OPERATOR, "POST", "/bss-api/v1/admin/catalog/offering", False),
    (Role.OPERATOR, "POST", "/bss-api/v1/admin/catalog/offering/{id}/price", False),
    (Role.OPERATOR, "POST", "/bss-api/v1/admin/catalog/offering/{id}/migrate-price", False),
    (Role.OPERATOR, "POST", "/bss-api/v1/provisioning/fault-injection", False),
    (Role.OPERATOR, "POST", "/bss-api/v1/admin/clock/advance", False),
    (Role.OPERATOR, "POST", "/tmf-api/usageManagement/v4/usage", False),
    (Role.OPERATOR, "GET", TOKENS, False),
    (Role.CHANNEL, "POST", CUSTOMER, True),
    (Role.CHANNEL, "POST", "/bss-api/v1/admin/catalog/offering", False),
    (Role.NETWORK, "POST", "/tmf-api/usageManagement/v4/usage", True),
    (Role.NETWORK, "POST", "/tmf-api/usageManagement/v4/usage/bulk", True),
    (Role.NETWORK, "POST", "/bss-api/v1/esim/{id}/device-event", True),
    (Role.NETWORK, "GET", CUSTOMER, False),
    (Role.NETWORK, "GET", "/tmf-api/usageManagement/v4/usage", False),
    (Role.READONLY, "GET", CUSTOMER, True),
    (Role.READONLY, "GET", "/bss-api/v1/subscription", True),
    (Role.READONLY, "POST", CUSTOMER, False),
    (Role.READONLY, "POST", "/tmf-api/usageConsumption/v4/queryUsageConsumption", False),
    (Role.READONLY, "GET", TOKENS, False),
]


@pytest.mark.parametrize(("role", "method", "path", "allowed"), SPOT_CHECKS)
async def test_what_each_role_may_do(api, runtime, role, method, path, allowed):
    token = await issue(runtime, f"spot-{role.value}", role.value)
    body = {} if method == "POST" else None
    r = await api.request(method, _concrete(path), json=body, headers=as_token(api, token))
    if allowed:
        assert r.status_code not in (401, 403) and r.status_code < 500, (r.status_code, r.text)
    else:
        _refusal(r, 403, "auth.role.forbidden")


def test_every_area_of_the_table_is_an_area_of_the_api():
    from api.app import create_app

    tags = {
        t for item in create_app().openapi()["paths"].values() for op in item.values() for t in op["tags"]
    }
    assert set(TABLE) <= tags, set(TABLE) - tags


async def test_a_refused_write_changes_nothing_and_a_path_nobody_documents_is_404(api, runtime):
    token = await issue(runtime, "viewer", "readonly")
    r = await api.post(CUSTOMER, json=customer_body(), headers=as_token(api, token))
    _refusal(r, 403, "auth.role.forbidden")
    assert (await api.get(CUSTOMER)).headers["X-Total-Count"] == "0"
    _refusal(await api.get("/tmf-api/nothing/here", headers=as_token(api, token)), 404, "resource.not_found")
    _refusal(await api.delete(CUSTOMER, headers=as_token(api, token)), 405, "method.not_allowed")


async def test_a_revoked_token_is_refused_at_once(api):
    created = await api.post(TOKENS, json={"name": "portal-web", "role": "channel"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["role"] == "channel" and token.startswith("bss_")
    assert (await api.get(CUSTOMER, headers=as_token(api, token))).status_code == 200

    revoked = await api.post(f"{TOKENS}/portal-web/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    _refusal(await api.get(CUSTOMER, headers=as_token(api, token)), 401, "auth.unauthorized")

    listed = {t["name"]: t for t in (await api.get(TOKENS)).json()}
    assert listed["portal-web"]["revoked"] and listed["portal-web"]["lastUsedAt"]
    assert listed["default"]["role"] == "admin" and listed["default"]["source"] == "development"
    # A name is never reused, so an identity in the audit log always means one token.
    again = await api.post(TOKENS, json={"name": "portal-web", "role": "channel"})
    _refusal(again, 409, "access.token.name_taken")


async def test_tokens_are_stored_hashed_and_bad_requests_are_refused(api, runtime):
    token = (await api.post(TOKENS, json={"name": "mediation", "role": "network"})).json()["token"]
    async with runtime.engine.connect() as conn:
        stored = (
            await conn.execute(text("select token_sha256 from access.api_token where name = 'mediation'"))
        ).one()
    assert token not in stored[0] and len(stored[0]) == 64
    _refusal(await api.post(TOKENS, json={"name": "x y", "role": "admin"}), 400, "access.token.name_invalid")
    _refusal(await api.post(TOKENS, json={"name": "ok-name", "role": "root"}), 400, "access.role.unknown")
    _refusal(
        await api.post(TOKENS, json={"name": "system", "role": "admin"}), 400, "access.token.name_reserved"
    )
    _refusal(await api.post(f"{TOKENS}/nobody/revoke"), 404, "access.token.not_found")


@pytest.mark.parametrize("role", ["admin", "operator", "network", "readonly"])
async def test_only_a_channel_may_name_the_actor(api, runtime, role):
    token = TEST_TOKEN if role == "admin" else await issue(runtime, f"named-{role}", role)
    # Each tries what its role may do: network reports usage, readonly reads.
    method, path, body = {"network": ("POST", USAGE, {}), "readonly": ("GET", CUSTOMER, None)}.get(
        role, ("POST", CUSTOMER, customer_body())
    )
    headers = {**as_token(api, token), "X-BSS-Actor": "someone-else"}
    r = await api.request(method, path, json=body, headers=headers)
    _refusal(r, 403, "auth.actor_header.forbidden")
    assert (await api.get(CUSTOMER)).headers["X-Total-Count"] == "0"


async def _audit_row(runtime, customer_id: str) -> tuple:
    async with runtime.engine.connect() as conn:
        return tuple(
            (
                await conn.execute(
                    text(
                        "select actor, channel, service_identity from audit.domain_event where aggregate_id = :id"
                    ),
                    {"id": customer_id},
                )
            ).one()
        )


async def test_a_channel_acts_for_the_actor_it_names_and_others_act_as_themselves(api, runtime):
    portal = await issue(runtime, "portal-csr", "channel")
    r = await api.post(
        CUSTOMER,
        json=customer_body(),
        headers={**as_token(api, portal), "X-BSS-Actor": "csr-ann", "X-BSS-Channel": "portal-csr"},
    )
    assert r.status_code == 201, r.text
    assert await _audit_row(runtime, r.json()["id"]) == ("csr-ann", "portal-csr", "portal-csr")

    operator = await issue(runtime, "ops-bob", "operator")
    r = await api.post(
        CUSTOMER,
        json=customer_body("bob@example.com"),
        headers={**as_token(api, operator), "X-BSS-Channel": "cli"},
    )
    assert r.status_code == 201, r.text
    assert await _audit_row(runtime, r.json()["id"]) == ("ops-bob", "cli", "ops-bob")

    r = await api.post(CUSTOMER, json=customer_body("cy@example.com"))
    assert await _audit_row(runtime, r.json()["id"]) == ("default", "api", "default")

    bad = await api.post(
        CUSTOMER, json=customer_body(), headers={**as_token(api, portal), "X-BSS-Actor": " "}
    )
    _refusal(bad, 400, "auth.actor_header.invalid")


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer \xff",
        "Bearer bss_caf\u00e9".encode(),
        b"Basic x",
        b"",
        b"Bearer",
        b"Bearer ",
        b"Bearer two words",
        b"Bearer " + b"a" * 100_000,
        b"Bearer " + TEST_TOKEN.encode() + b"\xff",
        b"Bearer bss_" + b"A" * 43,
    ],
)
async def test_a_malformed_authorization_header_is_401(api, header):
    r = await api.get(CUSTOMER, headers={"Authorization": header})
    _refusal(r, 401, "auth.unauthorized")


async def test_environment_tokens_take_their_role_from_the_environment(settings, runtime, monkeypatch):
    from api.app import create_app

    reader, admin = "r" * 40, "a" * 40
    monkeypatch.setenv("BSS_DASHBOARD_API_TOKEN", reader)
    monkeypatch.setenv("BSS_DASHBOARD_API_ROLE", "readonly")
    monkeypatch.setenv("BSS_OPS_API_TOKEN", admin)
    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bss.test") as client:
            assert (
                await client.get(CUSTOMER, headers={"Authorization": f"Bearer {reader}"})
            ).status_code == 200
            r = await client.post(
                CUSTOMER, json=customer_body(), headers={"Authorization": f"Bearer {reader}"}
            )
            _refusal(r, 403, "auth.role.forbidden")
            r = await client.post(
                CUSTOMER, json=customer_body(), headers={"Authorization": f"Bearer {admin}"}
            )
            assert r.status_code == 201
            assert await _audit_row(runtime, r.json()["id"]) == ("ops", "api", "ops")


def test_an_environment_token_with_an_unknown_role_stops_the_start(settings, monkeypatch):
    from api.auth import load_tokens

    monkeypatch.setenv("BSS_DASHBOARD_API_TOKEN", "r" * 40)
    monkeypatch.setenv("BSS_DASHBOARD_API_ROLE", "superuser")
    with pytest.raises(ValueError, match="BSS_DASHBOARD_API_ROLE"):
        load_tokens(settings)
