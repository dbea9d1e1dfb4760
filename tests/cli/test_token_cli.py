"""`bss admin token create|list|revoke`: a token printed once, listed with its role, refused once revoked."""

from __future__ import annotations

import json

from tests.cli_harness import bss_cli

CUSTOMER = "/tmf-api/customerManagement/v4/customer"


def test_create_list_and_revoke_a_token(settings):
    with bss_cli(settings) as bss:
        created = bss("admin", "token", "create", "--name", "mediation-1", "--role", "network")
        assert created.exit_code == 0, created.output
        token = created.stdout.strip().splitlines()[-1]
        assert token.startswith("bss_") and len(token) > 40

        listed = json.loads(bss("admin", "token", "list", "--json").stdout)
        mine = next(t for t in listed if t["name"] == "mediation-1")
        assert (mine["role"], mine["revoked"], mine["source"]) == ("network", False, "database")
        assert "token" not in mine
        table = bss("admin", "token", "list").stdout
        assert "mediation-1" in table and "network" in table and token not in table

        http = bss.client._http
        assert http.get(CUSTOMER, headers={"Authorization": f"Bearer {token}"}).status_code == 403

        revoked = bss("admin", "token", "revoke", "mediation-1")
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        assert http.get(CUSTOMER, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_errors_are_one_sentence(settings):
    with bss_cli(settings) as bss:
        bad = bss("admin", "token", "create", "--name", "x-1", "--role", "root")
        assert (
            bad.exit_code == 1 and "Unknown role" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        )
        missing = bss("admin", "token", "revoke", "nobody")
        assert missing.exit_code == 1 and "No token is named" in missing.stderr
