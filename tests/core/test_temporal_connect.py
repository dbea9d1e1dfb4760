"""The Temporal client's connect arguments for a real cluster: TLS, mutual TLS, API key (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from core.settings import Settings
from ops.runtime import temporal_connect_options


def settings(**kw) -> Settings:
    return Settings(temporal_address="temporal.example.net:7233", temporal_namespace="bss-prod", **kw)


def test_the_dev_server_needs_neither_tls_nor_a_key():
    options = temporal_connect_options(Settings())
    assert options == {"target_host": "127.0.0.1:7233", "namespace": "default"}


def test_tls_on_with_the_system_roots():
    options = temporal_connect_options(settings(temporal_tls=True))
    assert options == {"target_host": "temporal.example.net:7233", "namespace": "bss-prod", "tls": True}


def test_mutual_tls_reads_the_pem_files(tmp_path: Path):
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_bytes(f"-----{name}-----".encode())
    options = temporal_connect_options(
        settings(
            temporal_tls=True,
            temporal_tls_ca=tmp_path / "ca.pem",
            temporal_tls_cert=tmp_path / "cert.pem",
            temporal_tls_key=tmp_path / "key.pem",
            temporal_tls_server_name="temporal.internal",
        )
    )
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key, tls.domain) == (
        b"-----ca-----",
        b"-----cert-----",
        b"-----key-----",
        "temporal.internal",
    )
    assert "api_key" not in options


def test_an_api_key_always_goes_over_tls():
    options = temporal_connect_options(settings(temporal_api_key="tcld-secret"))
    assert options["api_key"] == "tcld-secret" and options["tls"] is True


def test_settings_come_from_the_environment(monkeypatch, tmp_path: Path):
    (tmp_path / "ca.pem").write_bytes(b"CA")
    monkeypatch.setenv("BSS_TEMPORAL_ADDRESS", "ns.tmprl.cloud:7233")
    monkeypatch.setenv("BSS_TEMPORAL_TLS", "1")
    monkeypatch.setenv("BSS_TEMPORAL_TLS_CA", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("BSS_TEMPORAL_API_KEY", "tcld-9f8e7d")
    options = temporal_connect_options(Settings())
    assert options["target_host"] == "ns.tmprl.cloud:7233" and options["api_key"] == "tcld-9f8e7d"
    assert options["tls"].server_root_ca_cert == b"CA"
    assert "tcld-9f8e7d" not in repr(Settings())  # the key never shows in a settings dump


def test_half_a_client_certificate_or_a_missing_file_is_refused(tmp_path: Path):
    (tmp_path / "cert.pem").write_bytes(b"C")
    with pytest.raises(ValueError, match="go together"):
        temporal_connect_options(settings(temporal_tls_cert=tmp_path / "cert.pem"))
    with pytest.raises(ValueError, match="BSS_TEMPORAL_TLS_CA"):
        temporal_connect_options(settings(temporal_tls_ca=tmp_path / "missing.pem"))
