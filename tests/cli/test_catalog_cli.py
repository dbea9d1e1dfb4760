"""`bss catalog` and `bss admin catalog` against the real API app in process (tests/cli_harness.py)."""

from __future__ import annotations

import json

import pytest

from cli.commands.catalog import quantity
from tests.cli_harness import bss_cli


@pytest.mark.parametrize(
    ("kind", "amount", "shown"),
    [
        ("data", 5120, "5 GB"),
        ("data", 153600, "150 GB"),
        ("data", 1536, "1.5 GB"),
        ("data_roaming", 500, "500 MB"),
        ("data", -1, "unlimited"),
        ("data_roaming", 0, "—"),
        ("voice", 100, "100 min"),
        ("sms", 100, "100 SMS"),
    ],
)
def test_allowances_read_like_a_price_list(kind, amount, shown):
    assert quantity(kind, amount) == shown


def test_catalog_list_shows_plans_with_price_and_allowances(settings):
    with bss_cli(settings) as bss:
        result = bss("catalog", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "PLAN_" in line}
    assert set(lines) == {"PLAN_S", "PLAN_M", "PLAN_L"}
    for text in ("Lite", "SGD 10.00", "5 GB", "100 min", "100 SMS"):
        assert text in lines["PLAN_S"]
    for text in ("Standard", "SGD 25.00", "30 GB", "unlimited", "500 MB"):
        assert text in lines["PLAN_M"]
    for text in ("Max", "SGD 45.00", "150 GB", "2 GB"):
        assert text in lines["PLAN_L"]


def test_catalog_list_json_is_the_tmf_list(settings):
    with bss_cli(settings) as bss:
        result = bss("catalog", "list", "--json")
    assert result.exit_code == 0, result.output
    plans = json.loads(result.stdout)
    assert [p["id"] for p in plans] == ["PLAN_L", "PLAN_M", "PLAN_S"]
    assert plans[1]["activePrice"]["amount"] == "25.00"


def test_catalog_show_renders_a_card_and_json(settings):
    with bss_cli(settings) as bss:
        card = bss("catalog", "show", "PLAN_M")
        as_json = bss("catalog", "show", "PLAN_M", "--json")
    assert card.exit_code == 0, card.output
    for text in (
        "PLAN_M · Standard",
        "SGD 25.00 / 30 days (PRICE_PLAN_M)",
        "30 GB",
        "unlimited",
        "500 MB",
        "Active",
    ):
        assert text in card.stdout
    assert json.loads(as_json.stdout)["id"] == "PLAN_M"


def test_catalog_show_unknown_plan_exits_1_with_the_reason_on_stderr(settings):
    with bss_cli(settings) as bss:
        result = bss("catalog", "show", "PLAN_NOPE")
    assert result.exit_code == 1
    assert "catalog.offering.not_found" in result.stderr and result.stdout == ""


def test_catalog_vas_lists_top_ups(settings):
    with bss_cli(settings) as bss:
        result = bss("catalog", "vas")
        as_json = bss("catalog", "vas", "--json")
    assert result.exit_code == 0, result.output
    day = next(line for line in result.stdout.splitlines() if "VAS_UNLIMITED_DAY" in line)
    assert "SGD 5.00" in day and "unlimited" in day and "24 h" in day
    roaming = next(line for line in result.stdout.splitlines() if "VAS_ROAMING_1GB" in line)
    assert "roaming +1 GB" in roaming and "SGD 8.00" in roaming
    assert {v["id"] for v in json.loads(as_json.stdout)} == {
        "VAS_DATA_1GB",
        "VAS_DATA_5GB",
        "VAS_UNLIMITED_DAY",
        "VAS_ROAMING_1GB",
    }


def test_admin_adds_a_plan_a_promo_price_and_retires_it(settings):
    with bss_cli(settings, actor="ops-bob") as bss:
        added = bss(
            "admin", "catalog", "add-offering", "--id", "PLAN_XL", "--name", "Extra Large", "--price", "60.00",
            "--data-mb", "307200", "--voice-min", "-1", "--sms-count", "-1",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert "PLAN_XL Extra Large on sale at SGD 60.00" in added.stdout

        promo = bss(
            "admin", "catalog", "add-price", "--offering", "PLAN_XL", "--price-id", "PRICE_PLAN_XL_LAUNCH",
            "--amount", "49.90", "--valid-from", "2000-01-01T00:00:00Z", "--json",
        )  # fmt: skip
        assert promo.exit_code == 0, promo.output
        assert json.loads(promo.stdout)["price"] == {"unit": "SGD", "value": 49.9}

        shown = json.loads(bss("catalog", "show", "PLAN_XL", "--json").stdout)
        assert shown["activePrice"]["id"] == "PRICE_PLAN_XL_LAUNCH"
        assert {a["allowanceType"]: a["quantity"] for a in shown["bundledAllowance"]} == {
            "data": 307200,
            "voice": -1,
            "sms": -1,
        }

        retired = bss("admin", "catalog", "retire-offering", "--id", "PLAN_XL")
        assert retired.exit_code == 0 and "PLAN_XL retired." in retired.stdout
        again = bss("admin", "catalog", "retire-offering", "--id", "PLAN_XL")
        assert again.exit_code == 1 and "catalog.offering.already_retired" in again.stderr
        listed = bss("catalog", "list", "--status", "Retired", "--json")
        assert [p["id"] for p in json.loads(listed.stdout)] == ["PLAN_XL"]


def test_admin_refusals_exit_1_and_change_nothing(settings):
    with bss_cli(settings) as bss:
        negative = bss(
            "admin",
            "catalog",
            "add-offering",
            "--id",
            "PLAN_Z",
            "--name",
            "Z",
            "--price",
            "-1",
            "--data-mb",
            "1",
        )
        no_bundle = bss("admin", "catalog", "add-offering", "--id", "PLAN_Z", "--name", "Z", "--price", "5")
        duplicate = bss(
            "admin",
            "catalog",
            "add-price",
            "--offering",
            "PLAN_S",
            "--price-id",
            "PRICE_PLAN_S",
            "--amount",
            "9",
        )
        listed = json.loads(bss("catalog", "list", "--json").stdout)
    assert negative.exit_code == 1 and "amount" in negative.stderr
    assert no_bundle.exit_code == 1 and "catalog.offering.no_allowances" in no_bundle.stderr
    assert duplicate.exit_code == 1 and "catalog.price.already_exists" in duplicate.stderr
    assert [p["id"] for p in listed] == ["PLAN_L", "PLAN_M", "PLAN_S"]
    assert all(len(p["productOfferingPrice"]) == 1 for p in listed)


def test_missing_required_option_is_a_usage_error(settings):
    with bss_cli(settings) as bss:
        result = bss("admin", "catalog", "add-price", "--offering", "PLAN_S")
    assert result.exit_code == 2


def test_a_plan_added_for_later_says_when_it_goes_on_sale(settings):
    with bss_cli(settings) as bss:
        added = bss(
            "admin", "catalog", "add-offering", "--id", "PLAN_2099", "--name", "Future", "--price", "9.00",
            "--valid-from", "2099-01-01T00:00:00Z", "--data-mb", "1024",
        )  # fmt: skip
        listed = bss("catalog", "list")
    assert added.exit_code == 0, added.output
    assert "PLAN_2099 Future added; on sale from 2099-01-01T00:00:00Z." in added.stdout
    line = next(line for line in listed.stdout.splitlines() if "PLAN_2099" in line)
    assert "not on sale" in line and "1 GB" in line
