"""Messages from real orders on the dev server: the confirmation carries the eSIM activation code
(LPA string) to the customer's address, a declined order's message says why; and
`bss trace for-subscription` draws the line's life from its workflow histories."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from email import policy

import pytest
from sqlalchemy import text

from ops import notify
from tests.cli.saga_cli import bss_on_saga, run
from tests.cli_harness import Bss
from tests.saga_harness import Saga


@pytest.fixture
def saga_bss(saga: Saga, settings, temporal_dev) -> Iterator[Bss]:
    yield from bss_on_saga(settings, temporal_dev)


async def scalar(saga: Saga, sql: str, **params):
    async with saga.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


def mail(settings, message_id: str) -> email.message.EmailMessage:
    raw = (settings.mailbox_dir / f"{message_id}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=policy.default)


async def test_order_confirmation_failure_message_and_line_trace(saga: Saga, saga_bss: Bss, settings):
    good = await saga.customer(email="ada.confirm@example.com")
    declined = await saga.customer(card="4000000000000002", email="bob.declined@example.com")
    ok, refused = await saga.order(good), await saga.order(declined)
    ok_result, refused_result = await saga.handle(ok.id).result(), await saga.handle(refused.id).result()
    assert ok_result.state == "completed" and refused_result.state == "failed"

    first = await notify.dispatch_pending(saga.runtime)
    second = await notify.dispatch_pending(saga.runtime)
    assert second.queued == second.sent == []  # never twice
    total, messages = await notify.list_messages(saga.runtime)
    by_template = {m.template: m for m in messages}
    assert set(by_template) == {"order_confirmation", "order_failed"} and total == 2
    assert sorted(first.sent) == sorted(m.id for m in messages)

    confirmation = mail(settings, by_template["order_confirmation"].id)
    code = await scalar(
        saga,
        "select p.activation_code from inventory.esim_profile p join subscription.subscription s "
        "on s.iccid = p.iccid where s.order_id = :o",
        o=ok.id,
    )
    assert code.startswith("LPA:1$") and code in confirmation.get_content()
    assert confirmation["To"] == "ada.confirm@example.com"
    assert ok_result.msisdn in confirmation["Subject"] and ok.id in confirmation["Subject"]
    assert ok_result.subscription_id in confirmation.get_content()

    failure = mail(settings, by_template["order_failed"].id)
    assert failure["To"] == "bob.declined@example.com" and refused.id in failure["Subject"]
    reason = await scalar(
        saga, "select failure_reason from ordering.product_order where id = :o", o=refused.id
    )
    assert "declined" in reason and reason in failure.get_content()

    drawn = await run(saga_bss, "trace", "for-subscription", ok_result.subscription_id)
    assert drawn.exit_code == 0, drawn.output
    assert drawn.stdout.startswith(f"Life of {ok_result.subscription_id} (sold by {ok.id})")
    trace = json.loads(
        (await run(saga_bss, "trace", "for-subscription", ok_result.subscription_id, "--json")).stdout
    )
    ids = [w["workflowId"] for w in trace["workflows"]]
    assert ids[0] == f"order-{ok.id}" and ids.count(f"subscription-{ok_result.subscription_id}") == 1
    assert trace["temporalUiUrl"].endswith(f"/subscription-{ok_result.subscription_id}")
    missing = await run(saga_bss, "trace", "for-subscription", "SUB-999999")
    assert missing.exit_code == 1 and "SUB-999999" in missing.stderr
