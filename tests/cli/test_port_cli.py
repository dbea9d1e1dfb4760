"""`bss port`: list, show and the refusal of a decision on an ended request, through the real API."""

from __future__ import annotations

import asyncio
import json

from tests.cli_harness import bss_cli


async def _requests(settings) -> tuple[str, str]:
    from ops.runtime import Runtime
    from tests.api.test_port_request_api import stored
    from tests.domains.test_subscription_lifecycle import new_customer

    rt = Runtime.create(settings, pool_size=1)
    try:
        customer_id = await new_customer(rt)
        live = await stored(rt, "87655555", customer_id)
        ended = await stored(rt, "87656666", customer_id, state="reject")
        return live, ended
    finally:
        await rt.close()


def test_port_list_show_and_a_refused_approve(settings):
    live, ended = asyncio.run(_requests(settings))
    with bss_cli(settings, actor="ops-bob") as bss:
        listing = bss("port", "list")
        shown = json.loads(bss("port", "show", ended, "--json").stdout)
        card = bss("port", "show", live)
        refused = bss("port", "approve", ended)
        bad = bss("port", "request", "87657777", "--direction", "sideways", "--date", "2026-12-24")
    assert listing.exit_code == 0, listing.output
    assert live in listing.stdout and ended in listing.stdout and "87655555" in listing.stdout
    assert (shown["state"], shown["reason"], shown["msisdn"]) == ("rejected", "test", "87656666")
    assert card.exit_code == 0 and "acknowledged" in card.stdout and "OtherTel" in card.stdout
    assert refused.exit_code == 1 and "port.approve.invalid_state" in refused.stderr
    assert bad.exit_code == 2
