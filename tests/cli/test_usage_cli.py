"""`bss usage` against the real API app in process (tests/cli_harness.py)."""

from __future__ import annotations

import asyncio
import json

from core.db import make_engine, make_session_factory
from ops.runtime import Runtime
from tests.cli_harness import bss_cli
from tests.usage_harness import active_line


def _line(settings, offering: str = "PLAN_S") -> tuple[str, str]:
    async def sell() -> tuple[str, str]:
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            rt = Runtime(settings=settings, engine=engine, db=make_session_factory(engine))
            return await active_line(rt, offering)
        finally:
            await engine.dispose()

    return asyncio.run(sell())


def test_simulate_rates_and_shows_the_balance_bar(settings) -> None:
    sub, msisdn = _line(settings)
    with bss_cli(settings) as bss:
        result = bss("usage", "simulate", "--msisdn", msisdn, "--type", "data", "--quantity", "500MB")
        assert result.exit_code == 0, result.output
        assert "rated" in result.stdout and sub in result.stdout and "data" in result.stdout
        assert "4.5 GB left" in result.stdout and "█" in result.stdout

        result = bss(
            "usage", "simulate", "--msisdn", msisdn, "--type", "voice", "--quantity", "90sec", "--json"
        )
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert body["bucket"]["consumedValue"] == {"amount": 1.5, "units": "min"}
        assert body["created"] is True

        again = bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "5", "--id", "cli-1", "--json")
        twice = bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "5", "--id", "cli-1", "--json")
        assert json.loads(again.stdout)["created"] is True and json.loads(twice.stdout)["created"] is False
        assert json.loads(twice.stdout)["bucket"]["consumedValue"]["amount"] == 505


def test_simulate_refusals_exit_1_with_the_rule_and_bad_quantities_exit_2(settings) -> None:
    _, msisdn = _line(settings)
    with bss_cli(settings) as bss:
        refused = bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "1GB", "--roaming")
        assert refused.exit_code == 1
        assert "subscription.usage_rated.roaming_balance_required" in refused.stderr

        unknown = bss("usage", "simulate", "--msisdn", "99999999", "--quantity", "1MB")
        assert unknown.exit_code == 1 and "usage.record.subscription_must_exist" in unknown.stderr

        wrong_unit = bss("usage", "simulate", "--msisdn", msisdn, "--type", "voice", "--quantity", "1GB")
        assert wrong_unit.exit_code == 1 and "usage.record.unit_matches_type" in wrong_unit.stderr

        assert bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "lots").exit_code == 2
        assert bss("usage", "simulate", "--msisdn", msisdn, "--type", "mms", "--quantity", "1").exit_code == 2


def test_exhausting_the_line_says_it_is_blocked_and_history_lists_newest_first(settings) -> None:
    sub, msisdn = _line(settings)
    with bss_cli(settings) as bss:
        assert bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "4GB").exit_code == 0
        last = bss("usage", "simulate", "--msisdn", msisdn, "--quantity", "2GB")
        assert last.exit_code == 0, last.output
        assert "The line is blocked" in last.stdout and "Past the allowance" in last.stdout

        blocked = bss("usage", "simulate", "--msisdn", msisdn, "--type", "sms", "--quantity", "1")
        assert blocked.exit_code == 1 and "subscription_must_be_active" in blocked.stderr

        table = bss("usage", "history", "--subscription", sub)
        assert table.exit_code == 0, table.output
        assert table.stdout.index("2 GB") < table.stdout.index("4 GB") and "past allowance" in table.stdout

        listed = bss("usage", "history", "--msisdn", msisdn, "--json")
        assert [json.loads(listed.stdout)[i]["usageType"] for i in range(2)] == ["data", "data"]
        assert bss("usage", "history").exit_code == 2
