"""`bss customer` and `bss payment` against the real API app in process (tests/cli_harness.py)."""

from __future__ import annotations

import json

from tests.cli_harness import bss_cli

VISA = "4242424242424242"


def test_customer_create_list_show_with_a_card_on_file(settings):
    with bss_cli(settings, actor="ops-ann") as bss:
        created = bss(
            "customer",
            "create",
            "--name",
            "Ada Lovelace",
            "--email",
            "ada@example.com",
            "--phone",
            "+6591234567",
            "--json",
        )
        assert created.exit_code == 0, created.output
        customer = json.loads(created.stdout)
        cid = customer["id"]
        assert customer["status"] == "active" and customer["name"] == "Ada Lovelace"

        added = bss("payment", "add-card", "--customer", cid, "--card", VISA, "--exp", "12/30", "--json")
        assert added.exit_code == 0, added.output
        method = json.loads(added.stdout)
        assert (method["lastFourDigits"], method["brand"], method["isPreferred"]) == ("4242", "visa", True)
        assert VISA not in added.stdout

        listed = bss("customer", "list", "--name", "lovelace")
        assert listed.exit_code == 0 and cid in listed.stdout and "ada@example.com" in listed.stdout

        shown = bss("customer", "show", cid)
        assert shown.exit_code == 0, shown.output
        for text in (
            "Ada Lovelace",
            "active",
            "ada@example.com",
            "+6591234567",
            "not_verified",
            f"{method['id']}  visa •••• 4242  exp 2030-12 (default)",
        ):
            assert text in shown.stdout
        shown_json = json.loads(bss("customer", "show", cid, "--json").stdout)
        assert [m["id"] for m in shown_json["paymentMethods"]] == [method["id"]]


def test_payment_list_remove_and_set_default(settings):
    with bss_cli(settings) as bss:
        cid = json.loads(
            bss("customer", "create", "--name", "Bob", "--phone", "+6590000000", "--json").stdout
        )["id"]
        first = json.loads(
            bss("payment", "add-card", "--customer", cid, "--card", VISA, "--exp", "12/30", "--json").stdout
        )
        second = json.loads(
            bss(
                "payment",
                "add-card",
                "--customer",
                cid,
                "--card",
                "5555555555554444",
                "--exp",
                "2031-01",
                "--json",
            ).stdout
        )
        table = bss("payment", "list-methods", "--customer", cid)
        assert table.exit_code == 0 and first["id"] in table.stdout and "mastercard" in table.stdout

        assert bss("payment", "set-default", second["id"]).exit_code == 0
        removed = bss("payment", "remove-method", second["id"], "--json")
        assert removed.exit_code == 0 and json.loads(removed.stdout)["status"] == "removed"
        methods = json.loads(bss("payment", "list-methods", "--customer", cid, "--json").stdout)
        assert [(m["id"], m["isPreferred"]) for m in methods] == [(first["id"], True)]


def test_refusals_are_one_line_on_stderr_with_exit_code_1(settings):
    with bss_cli(settings) as bss:
        no_contact = bss("customer", "create", "--name", "Ada")
        assert no_contact.exit_code == 1 and "customer.create.requires_contact_medium" in no_contact.stderr
        missing = bss("customer", "show", "CUST-00000000")
        assert missing.exit_code == 1 and "customer.not_found" in missing.stderr
        cid = json.loads(
            bss("customer", "create", "--name", "Ada", "--email", "a@example.com", "--json").stdout
        )["id"]
        bad_card = bss(
            "payment", "add-card", "--customer", cid, "--card", "4242424242424241", "--exp", "12/30"
        )
        assert bad_card.exit_code == 1 and "card_number_invalid" in bad_card.stderr
        assert "4242424242424241" not in bad_card.stderr
        gone = bss("payment", "remove-method", "PM-999999")
        assert gone.exit_code == 1 and "payment_method.remove.not_found" in gone.stderr
        usage = bss("payment", "add-card", "--customer", cid)
        assert usage.exit_code == 2
