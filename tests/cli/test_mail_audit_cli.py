"""`bss mail list|show` and `bss audit list` against the real API app in process."""

from __future__ import annotations

import asyncio
import json

from core.context import RequestContext
from core.db import make_engine, make_session_factory, transaction
from ops.runtime import Runtime
from tests.cli_harness import bss_cli

CTX = RequestContext(actor="cli-test", channel="scenario", service_identity="test")


def _setup(settings) -> tuple[str, str]:
    """A customer told their promo code was refused, and a login code: two messages sent."""

    async def go() -> tuple[str, str]:
        from domains.audit.services import record
        from ops import notify
        from tests.api.order_flow import customer

        engine = make_engine(settings.database_url, pool_size=2)
        try:
            rt = Runtime(settings=settings, engine=engine, db=make_session_factory(engine))
            cust = await customer(rt)
            async with transaction(rt.db) as s:
                payload = {"customer_id": cust, "code": "SPRING", "reason": "expired"}
                record(s, CTX, "order.promo_rejected", "product_order", "ORD-000555", payload)
            await notify.dispatch_pending(rt)
            otp = await notify.send(rt, "login_code", "otp@example.com", {"code": "654321"})
            return cust, otp.id
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_mail_list_and_show(settings) -> None:
    cust, otp_id = _setup(settings)
    with bss_cli(settings) as bss:
        listed = bss("mail", "list")
        assert listed.exit_code == 0, listed.output
        assert "otp@example.com" in listed.stdout and "promo_rejected" in listed.stdout
        assert "login_code" in listed.stdout and listed.stdout.count("completed") == 2

        mine = json.loads(bss("mail", "list", "--to", "otp@example.com", "--json").stdout)
        assert [m["id"] for m in mine] == [otp_id]
        theirs = json.loads(bss("mail", "list", "--customer", cust, "--json").stdout)
        assert len(theirs) == 1 and "SPRING" in theirs[0]["subject"]

        shown = bss("mail", "show", otp_id)
        assert shown.exit_code == 0, shown.output
        assert "Your one-time login code is 654321." in shown.stdout and "otp@example.com" in shown.stdout
        assert f"{otp_id}.eml" in shown.stdout  # the mailbox file

        missing = bss("mail", "show", "MSG-00000000")
        assert missing.exit_code == 1 and "No message MSG-00000000" in missing.stderr
        bad = bss("mail", "list", "--state", "nonsense")
        assert bad.exit_code == 1 and "state must be one of" in bad.stderr


def test_audit_list_by_customer_order_and_since(settings) -> None:
    cust, _ = _setup(settings)
    with bss_cli(settings) as bss:
        listed = bss("audit", "list", "--customer", cust)
        assert listed.exit_code == 0, listed.output
        for shown in ("order.promo_rejected", "payment_method.added", "customer.created", "code=SPRING"):
            assert shown in listed.stdout, listed.stdout

        by_order = json.loads(bss("audit", "list", "--order", "ORD-000555", "--json").stdout)
        assert [e["eventType"] for e in by_order] == ["order.promo_rejected"]
        recent = json.loads(bss("audit", "list", "--customer", cust, "--since", "1h", "--json").stdout)
        assert len(recent) == 3
        assert json.loads(bss("audit", "list", "--since", "2999-01-01", "--json").stdout) == []

        bad = bss("audit", "list", "--since", "last tuesday")
        assert bad.exit_code == 2 and "--since" in bad.output
