"""`bss inventory` against the real API app in process (tests/cli_harness.py)."""

from __future__ import annotations

import asyncio
import json

from core.context import RequestContext
from core.db import make_engine, make_session_factory, transaction
from domains.inventory import services as inv
from tests.cli_harness import bss_cli

FIRST_ICCID = "8910101000000000000"


def _sell_a_line(settings) -> tuple[str, str]:
    async def sell() -> tuple[str, str]:
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            async with transaction(make_session_factory(engine)) as s:
                ctx = RequestContext(actor="tester")
                number = await inv.reserve_msisdn(s, ctx, reserved_for="SO-000001")
                profile = await inv.reserve_esim(s, ctx, reserved_for="SO-000001")
                await inv.mark_esim_prepared(s, ctx, iccid=profile.iccid)
                await inv.assign_msisdn(s, ctx, msisdn=number, subscription_id="SUB-000001")
                await inv.assign_esim(
                    s, ctx, iccid=profile.iccid, msisdn=number, subscription_id="SUB-000001"
                )
                return number, profile.iccid
        finally:
            await engine.dispose()

    return asyncio.run(sell())


def test_msisdn_list_filters_and_shows_the_holder(settings):
    _sell_a_line(settings)
    with bss_cli(settings) as bss:
        result = bss("inventory", "msisdn", "list", "--status", "assigned")
        assert result.exit_code == 0, result.output
        assert "90000000" in result.stdout and "SUB-000001" in result.stdout and "SO-000001" in result.stdout
        assert "90000001" not in result.stdout

        result = bss("inventory", "msisdn", "list", "--prefix", "900009", "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == ["90000900", "90000901", "90000902"]


def test_add_range_reports_what_was_new_and_is_refused_with_the_rule(settings):
    with bss_cli(settings, actor="ops-bob") as bss:
        result = bss("inventory", "msisdn", "add-range", "9100", "10")
        assert result.exit_code == 0, result.output
        assert "Added 10 numbers 91000000–91000009 (0 were already in the pool)" in result.stdout

        again = bss("inventory", "msisdn", "add-range", "9100", "10", "--json")
        assert again.exit_code == 0 and json.loads(again.stdout)["added"] == 0

        refused = bss("inventory", "msisdn", "add-range", "91", "10")
        assert refused.exit_code == 1
        assert "msisdn.add_range.sane_prefix" in refused.stderr

        listed = bss("inventory", "msisdn", "list", "--prefix", "9100", "--limit", "1000", "--json")
    assert len(json.loads(listed.stdout)) == 10


def test_esim_show_is_an_activation_card(settings):
    number, iccid = _sell_a_line(settings)
    with bss_cli(settings) as bss:
        result = bss("inventory", "esim", "show", iccid)
        assert result.exit_code == 0, result.output
        data = json.loads(bss("inventory", "esim", "show", iccid, "--json").stdout)
        qr = bss("inventory", "esim", "show", iccid, "--qr")
    assert data["activationCode"] == f"LPA:1$smdp.bss.local${data['matchingId']}"
    for shown in (iccid, data["activationCode"], data["imsi"], number, "SUB-000001", "prepared"):
        assert shown in result.stdout
    assert qr.exit_code == 0 and len(qr.stdout.splitlines()) > len(result.stdout.splitlines()) + 10


def test_esim_list_by_state_and_counts(settings):
    _sell_a_line(settings)
    with bss_cli(settings) as bss:
        listed = bss("inventory", "esim", "list", "--status", "prepared", "--json")
        counts = bss("inventory", "counts", "--json")
        table = bss("inventory", "counts")
    assert [r["id"] for r in json.loads(listed.stdout)] == [FIRST_ICCID]
    assert json.loads(counts.stdout)["esim"]["prepared"] == 1
    assert json.loads(counts.stdout)["msisdn"]["available"] == 999
    assert "ported_out" in table.stdout and "1000" in table.stdout


def test_unknown_profile_and_bad_status_exit_with_the_contract_codes(settings):
    with bss_cli(settings) as bss:
        missing = bss("inventory", "esim", "show", "8910101999999999999")
        bad = bss("inventory", "esim", "list", "--status", "sold")
    assert missing.exit_code == 1 and "esim.not_found" in missing.stderr
    assert bad.exit_code == 2
