"""Process settings, read once from the environment (BSS_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BSS_", extra="ignore")

    data_dir: Path = Path(".bss")
    # Unset: the embedded Postgres / Temporal dev server of `bss up` are used.
    db_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    # A real cluster (BSS_TEMPORAL_ADDRESS): TLS, mutual TLS with a client certificate, or an API key
    # (Temporal Cloud). Certificate files are PEM; an API key always travels over TLS.
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "bss"
    # Worker processes `bss up` runs on the task queue (`bss up --workers N`); each polls it alone.
    workers: int = 1
    # Workflows each worker keeps in memory (about 80 KiB each, bench/renewals.py). An evicted one
    # replays its whole history on its next task: with 10,000 lines renewing at once, a cache
    # smaller than the open lines replays most of them twice per renewal.
    workflow_cache: int = 10_000

    pg_port: int = 5433
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    api_port: int = 8000
    portal_port: int = 9001
    cockpit_port: int = 9002
    host: str = "127.0.0.1"

    api_token: str | None = None
    smdp_host: str = "smdp.bss.local"
    otel_endpoint: str | None = None
    # Scales every simulated network latency; 0 makes the simulators instant (benchmarks, tests).
    sim_latency_factor: float = 1.0
    # Inventory: under these many available numbers / eSIM profiles after a reservation, an
    # `inventory.low_watermark` event and an operator ticket (once per crossing); 0 turns it off.
    low_watermark_msisdn: int = 50
    low_watermark_esim: int = 50
    # KYC (domains/crm/kyc.py): the provider's Ed25519 public key (PEM, or the raw 32 bytes in
    # base64) that signs attestations. Unset: the development provider's key, generated into
    # <data dir>/kyc-dev-provider.pem on first use.
    kyc_public_key: str | None = None
    # The server secret of the document numbers' keyed hash (HMAC-SHA256). Unset: generated into
    # <data dir>/kyc-hmac-secret on first use (development). Changing it orphans the stored hashes.
    kyc_hmac_secret: SecretStr | None = None
    # An order for a customer without a verified (signed) KYC attestation is refused (422).
    require_kyc: bool = False
    # A provisioning task that has not answered after this long is stuck and waits for an operator.
    task_deadline_seconds: float = 10.0
    # An order's undo step (refund, network undo) retries alone this long before it also opens a
    # ticket for an operator (and keeps waiting): workflows/product_order.py.
    compensation_patience_seconds: float = 1800.0
    # An order still `acknowledged` this long after it was stored has no workflow yet (Temporal was
    # down when it came in): the worker's sweeper starts it, every order_sweep_seconds, and fails it
    # with a reason once it could not be started for order_start_give_up_seconds (ops/orders.py).
    order_start_grace_seconds: float = 30.0
    order_sweep_seconds: float = 60.0
    order_start_give_up_seconds: float = 3600.0
    # Test stacks only (`bss up --test-clock`): the API and the worker share one business clock in
    # <data dir>/clock.json, which `bss clock` freezes and moves on. Never on in production.
    test_clock: bool = False
    # The card gateway adapter (domains/payment/gateway.py PROVIDERS): `mock` keeps its own ledger
    # in Postgres (schema cardgw). An unknown name stops the worker at start.
    payment_provider: str = "mock"
    # A gateway call that has not answered after this long is given up (an unknown outcome,
    # reconciled by its idempotency key); below the activity's 10 s start-to-close timeout.
    payment_timeout_seconds: float = 5.0
    # A renewal the gateway cannot take (an outage on our side) keeps the line active this long
    # after the period ended, then blocks it `renewal_pending` while the charge keeps retrying.
    renewal_grace_days: float = 3.0
    # A renewal still failing this long after it fell due opens a payment_exception ticket.
    renewal_attention_days: float = 7.0
    # The longest wait between two attempts of a failing renewal charge.
    renewal_retry_max_seconds: float = 300.0
    # Notifications (ops/notify.py): each message goes to <data dir>/mailbox/ as an .eml file, and
    # handed to an SMTP server first when smtp_url is set (smtp://user:password@host:587, STARTTLS when
    # offered; smtps://… for implicit TLS). Failed sends stay queued and are retried with a backoff.
    smtp_url: SecretStr | None = None
    mail_from: str = "BSS Mobile <no-reply@bss.local>"
    operators_email: str = "operators@bss.local"
    notify_dispatch_seconds: float = 5.0
    # The web doors (portals/web): the server secret keying the one-time login codes' HMAC. Unset:
    # generated into <data dir>/portal-secret on first use (development).
    portal_secret: SecretStr | None = None
    # The LLM agent (agent/): any OpenAI-compatible chat-completions endpoint (".../v1"). Unset base
    # URL: the agent is off and every chat surface says so plainly; everything else works.
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    # Loop guards of one turn: model calls at most, and tokens (as the endpoint reports them).
    llm_max_steps: int = 8
    llm_turn_token_budget: int = 150_000
    # The portal's customer chat (portals/selfserve/chat.py), per customer: messages an hour, and
    # tokens over the conversations used in the last 24 hours; over either it refuses politely.
    chat_turns_per_hour: int = 20
    chat_tokens_per_day: int = 100_000

    @property
    def embedded_db(self) -> bool:
        return self.db_url is None

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def pg_password_file(self) -> Path:
        """The embedded Postgres' password, generated on its first start (stack/postgres.py)."""
        return self.data_dir / "pg-password"

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        try:
            password = self.pg_password_file.read_text().strip()
        except FileNotFoundError:
            password = ""  # not started yet: the connection is refused until `bss up` made one
        return f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{self.pg_port}/bss"

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "api-token"

    @property
    def clock_file(self) -> Path:
        return self.data_dir / "clock.json"

    @property
    def mailbox_dir(self) -> Path:
        return self.data_dir / "mailbox"


@lru_cache
def get_settings() -> Settings:
    return Settings()
