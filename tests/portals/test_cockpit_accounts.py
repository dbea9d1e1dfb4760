"""Cockpit operator accounts: `bss admin operator create|list|disable|enable` through the admin-only
API, argon2 hashes, and the sign-in rule (lockout after five wrong passwords, disabled accounts)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from core.context import RequestContext
from core.migrate import sync_url
from ops import staff
from tests.cli_harness import bss_cli
from tests.conftest import token_headers
from tests.portals.cockpit_harness import cheap_hashes  # noqa: F401 (fixture)

OPERATORS = "/bss-api/v1/admin/operator"
pytestmark = pytest.mark.usefixtures("cheap_hashes")


COCKPIT = RequestContext(actor="cockpit-login", channel="cockpit")


def test_admin_creates_lists_and_disables_operators_from_the_cli(settings):
    with bss_cli(settings, actor="ops-root") as bss:
        made = bss("admin", "operator", "create", "--email", "Ana@Example.com", "--role", "csr", "--json")
        assert made.exit_code == 0, made.output
        ana = json.loads(made.stdout)
        assert ana["email"] == "ana@example.com" and ana["role"] == "csr" and ana["id"].startswith("OP-")
        assert len(ana["password"]) >= 16  # generated, shown once
        human = bss(
            "admin",
            "operator",
            "create",
            "--email",
            "bo@example.com",
            "--role",
            "admin",
            "--password",
            "correct horse battery",
            "--name",
            "Bo",
        )
        assert human.exit_code == 0 and "bo@example.com" in human.output and "never again" not in human.output
        twice = bss("admin", "operator", "create", "--email", "ana@example.com", "--role", "admin")
        assert twice.exit_code == 1 and "staff.operator.email_taken" in twice.output
        bad = bss("admin", "operator", "create", "--email", "x@example.com", "--role", "root")
        assert bad.exit_code == 1 and "staff.role.unknown" in bad.output
        listed = bss("admin", "operator", "list")
        assert listed.exit_code == 0 and "ana@example.com" in listed.output and "Bo" in listed.output
        off = bss("admin", "operator", "disable", "ana@example.com", "--json")
        assert off.exit_code == 0 and json.loads(off.stdout)["disabled"] is True
    engine = create_engine(sync_url(settings.db_url))
    with engine.connect() as c:
        row = c.execute(
            text("SELECT id, password_hash FROM staff.operator WHERE email = 'ana@example.com'")
        ).one()
        events = c.execute(
            text(
                "SELECT event_type, actor FROM audit.domain_event WHERE aggregate_type = 'operator' "
                "AND aggregate_id = :id ORDER BY id"
            ),
            {"id": row.id},
        ).all()
    engine.dispose()
    assert row.password_hash.startswith("$argon2") and ana["password"] not in row.password_hash
    assert [tuple(e) for e in events] == [("operator.created", "ops-root"), ("operator.disabled", "ops-root")]


async def test_only_admin_tokens_manage_operators(api, runtime):
    for role in ("operator", "channel", "readonly"):
        headers = await token_headers(runtime, f"t-{role}", role)
        r = await api.post(OPERATORS, json={"email": "z@example.com", "role": "admin"}, headers=headers)
        assert r.status_code == 403, (role, r.text)
    r = await api.post(OPERATORS, json={"email": "z@example.com", "role": "admin", "password": "short"})
    assert r.status_code == 400


async def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(runtime):
    await staff.create_operator(runtime, COCKPIT, "cy@example.com", "csr", password="the right password")
    assert (await staff.authenticate(runtime, COCKPIT, "nobody@example.com", "whatever")).outcome == "unknown"
    for _ in range(4):
        assert (await staff.authenticate(runtime, COCKPIT, "cy@example.com", "wrong password")).outcome == (
            "wrong_password"
        )
    ok = await staff.authenticate(runtime, COCKPIT, "CY@example.com", "the right password")
    assert ok.ok and ok.operator.email == "cy@example.com"  # a success resets the count
    for _ in range(5):
        assert not (await staff.authenticate(runtime, COCKPIT, "cy@example.com", "wrong password")).ok
    locked = await staff.authenticate(runtime, COCKPIT, "cy@example.com", "the right password")
    assert locked.outcome == "locked"
    await staff.enable_operator(runtime, COCKPIT, "cy@example.com")
    assert (await staff.authenticate(runtime, COCKPIT, "cy@example.com", "the right password")).ok
    await staff.disable_operator(runtime, COCKPIT, "cy@example.com")
    assert (
        await staff.authenticate(runtime, COCKPIT, "cy@example.com", "the right password")
    ).outcome == "disabled"
