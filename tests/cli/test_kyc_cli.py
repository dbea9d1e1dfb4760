"""`bss customer kyc` on a development stack: it signs as the prebaked KYC provider (the key in
BSS_DATA_DIR, shared with the API) and the API verifies and records it."""

from __future__ import annotations

import json

import pytest

from core.settings import get_settings
from tests.cli_harness import bss_cli


@pytest.fixture
def same_data_dir(settings, monkeypatch):
    monkeypatch.setenv("BSS_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("BSS_KYC_PUBLIC_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_customer_kyc_records_a_signed_attestation(settings, same_data_dir):
    with bss_cli(settings) as bss:
        cid = json.loads(
            bss("customer", "create", "--name", "Ada", "--phone", "+6591234567", "--json").stdout
        )["id"]
        done = bss("customer", "kyc", cid, "--number", "S1234567D", "--json")
        assert done.exit_code == 0, done.output
        body = json.loads(done.stdout)
        assert body["kycStatus"] == "verified" and "S1234567D" not in done.stdout
        # Signed for this customer only: the same command cannot be replayed with another signature.
        forged = bss("customer", "kyc", cid, "--number", "S1234567D", "--signature", "AAAA")
        assert forged.exit_code == 1 and "kyc.attestation.signature_invalid" in forged.stderr
