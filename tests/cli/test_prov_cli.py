"""`bss prov fault` for the card gateway: PAYMENT_CHARGE / PAYMENT_REFUND with the gateway's faults."""

from __future__ import annotations

import json

from tests.cli_harness import bss_cli


def test_prov_fault_switches_a_card_gateway_fault(settings):
    with bss_cli(settings, actor="ops-bob") as bss:
        on = bss("prov", "fault", "PAYMENT_CHARGE", "unavailable")
        assert on.exit_code == 0, on.output
        rules = json.loads(bss("prov", "faults", "--json").stdout)
        refund = bss("prov", "fault", "payment_refund", "lost_response", "--probability", "0.3")
        mismatched = bss("prov", "fault", "PAYMENT_CHARGE", "stuck")
        after = json.loads(bss("prov", "faults", "--json").stdout)
    assert "unavailable on PAYMENT_CHARGE is on at probability 1.00" in on.stdout
    rule = next(r for r in rules if r["id"] == "FI_PAYMENT_CHARGE_UNAVAILABLE")
    assert (rule["taskType"], rule["faultType"], rule["enabled"]) == ("PAYMENT_CHARGE", "unavailable", True)
    assert refund.exit_code == 0, refund.output
    assert any(
        r["taskType"] == "PAYMENT_REFUND" and r["faultType"] == "lost_response" and r["probability"] == 0.3
        for r in after
    )
    assert mismatched.exit_code == 1 and mismatched.stderr.count("\n") == 1
    assert "its faults are decline, timeout, unavailable, lost_response" in mismatched.stderr
