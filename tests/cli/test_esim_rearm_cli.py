"""`bss esim rearm`: a profile that belongs to no line is refused with its rule code (exit 1); the
re-arm itself runs on the saga in tests/workflows/test_hold_order_rearm.py."""

from __future__ import annotations

from tests.cli_harness import bss_cli


def test_esim_rearm_refuses_a_profile_without_a_line(settings):
    with bss_cli(settings) as bss:
        refused = bss("esim", "rearm", "8910101000000000000")
        assert refused.exit_code == 1 and "esim.rearm.not_on_a_line" in refused.stderr
        assert "rearm" in bss("esim", "--help").stdout
