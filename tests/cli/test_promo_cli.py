"""`bss promo` against the in-process API: create, list, show, assign, unassign, exhaust, as JSON
and as tables/cards; a refusal is exit 1 with the rule on stderr."""

from __future__ import annotations

import asyncio
import json

from tests.cli_harness import bss_cli


def test_promo_commands(settings):
    with bss_cli(settings) as bss:
        made = bss(
            "promo",
            "create",
            "HALF3",
            "--name",
            "Half off",
            "--type",
            "percent",
            "--value",
            "50",
            "--periods",
            "3",
            "--max-uses",
            "10",
            "--json",
        )
        assert made.exit_code == 0, made.output
        assert json.loads(made.stdout)["code"] == "HALF3"
        target = bss(
            "promo",
            "create",
            "VIP",
            "--name",
            "VIP",
            "--type",
            "absolute",
            "--value",
            "2.50",
            "--customers",
            "",
        )
        assert target.exit_code == 0, target.output
        assert "VIP" in target.stdout and "perpetual" not in target.stdout and "every period" in target.stdout

        listed = bss("promo", "list")
        assert listed.exit_code == 0 and "HALF3" in listed.stdout and "50 % off, 3 periods" in listed.stdout
        shown = bss("promo", "show", "half3")
        assert "0 / 10" in shown.stdout and "everyone" in shown.stdout

        customer = bss.client.post(
            "/tmf-api/customerManagement/v4/customer",
            {
                "name": "Ada Tan",
                "contactMedium": [
                    {"mediumType": "email", "characteristic": {"emailAddress": "ada.cli@example.sg"}}
                ],
            },
        )["id"]
        assigned = json.loads(bss("promo", "assign", "VIP", "--customer", customer, "--json").stdout)
        assert assigned["eligibleCustomerIds"] == [customer]
        unassigned = json.loads(bss("promo", "unassign", "VIP", "--customer", customer, "--json").stdout)
        assert unassigned["eligibleCustomerIds"] == []

        assert json.loads(bss("promo", "exhaust", "HALF3", "--json").stdout)["state"] == "exhausted"
        again = bss("promo", "exhaust", "HALF3")
        assert again.exit_code == 1 and "catalog.promotion.exhaust.not_active" in again.stderr
        public = bss("promo", "assign", "HALF3", "--customer", customer)
        assert public.exit_code == 1 and "not_targeted" in public.stderr

        # `bss order show` says what the code did to the price
        bss("promo", "create", "TENOFF", "--name", "Ten off", "--type", "percent", "--value", "10")
        applied, ignored = asyncio.run(_orders(settings, ("TENOFF", "NOSUCH")))
        assert "TENOFF: SGD 9.00 (every period)" in bss("order", "show", applied).stdout
        shown = bss("order", "show", ignored).stdout
        assert "NOSUCH: not applied, full price" in shown and "unknown_code" in shown


async def _orders(settings, codes) -> list[str]:
    """Orders stored with these codes (their workflows are not needed to show them)."""
    from core.context import RequestContext
    from core.db import transaction
    from domains.ordering import services as ordering
    from ops.runtime import Runtime
    from tests.api.order_flow import customer

    rt = Runtime.create(settings, pool_size=1)
    try:
        cust = await customer(rt)
        async with transaction(rt.db) as s:
            ctx = RequestContext(actor="csr", channel="cli")
            return [
                (await ordering.create_order(s, ctx, customer_id=cust, offering_id="PLAN_S", promo_code=c)).id
                for c in codes
            ]
    finally:
        await rt.close()
