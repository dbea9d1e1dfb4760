"""Bare `bss`: the REPL cockpit's slash commands, without a language model, on the real Postgres
(conversations in schema agent) and the real API in-process (bss commands and /360)."""

from __future__ import annotations

import asyncio
import json
import re

from tests.agent.scripted_llm import call, llm_server, scripted_llm, text  # noqa: F401 (fixtures)
from tests.cli_harness import bss_cli

ACTOR = "ops-alice@example.com"


def _conversations(settings) -> list[dict]:
    from sqlalchemy import text

    from ops.runtime import Runtime

    async def read() -> list[dict]:
        rt = Runtime.create(settings, pool_size=1)
        try:
            async with rt.engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT id, actor, profile, customer_id FROM agent.conversation ORDER BY created_at")
                )
                return [dict(r._mapping) for r in rows]
        finally:
            await rt.close()

    return asyncio.run(read())


def _other_actors_session(settings) -> str:
    from agent import store
    from ops.runtime import Runtime

    async def make() -> str:
        rt = Runtime.create(settings, pool_size=1)
        try:
            return await store.new_session(rt, actor="ops-bob@example.com", profile="operator")
        finally:
            await rt.close()

    return asyncio.run(make())


def test_repl_slash_commands_work_without_a_model(settings):
    from cli.main import app

    with bss_cli(settings, actor=ACTOR) as bss:
        made = bss("customer", "create", "--name", "Ada Lovelace", "--email", "ada@example.com", "--json")
        assert made.exit_code == 0, made.output
        cust = json.loads(made.stdout)["id"]
        bobs = _other_actors_session(settings)
        lines = [
            "/help",
            "/confirm",  # nothing pending, no conversation yet
            "/sessions",
            "/new",
            f"/focus {cust}",
            "/360",
            "/confirm",
            "/cancel",
            "why is this line blocked?",  # no model: said plainly
            "catalog list",  # a bss command still runs
            "/new",
            "/sessions",
            "/focus CUST-00000000",  # no such customer
            f"/switch {bobs}",  # another operator's conversation
            "/bogus",
        ]
        result = bss.runner.invoke(app, [], input="\n".join(lines) + "\nexit\n")
        out = result.output
        assert result.exit_code == 0, out
        first = re.findall(r"New conversation (SESS-[0-9a-f]{8})\.", out)[0]
        # a later REPL continues the first conversation with its pinned customer
        back = bss.runner.invoke(app, [], input=f"/switch {first}\n/360\nexit\n")
        assert f"Now in {first}, focused on {cust}." in back.output, back.output
        assert "you: why is this line blocked?" in back.output  # its last messages, again
        assert "Ada Lovelace" in back.output

    assert "/focus CUST-" in out and "What a line is" in out  # /help
    assert "Nothing to confirm: no conversation yet." in out
    assert "No conversations yet" in out
    sessions = re.findall(r"New conversation (SESS-[0-9a-f]{8})\.", out)
    assert len(sessions) == 2, out
    assert f"Focused on {cust} in {sessions[0]}" in out
    # /360 is `bss customer show`: the card with the customer's name, the lines section
    assert "Ada Lovelace" in out and "No lines." in out
    assert f"Nothing to confirm: no proposal is pending in {sessions[0]}." in out
    assert f"Nothing to cancel: no proposal is pending in {sessions[0]}." in out
    assert "No language model is configured" in out
    assert "PLAN_S" in out  # catalog list ran
    assert "error: No customer CUST-00000000." in out
    assert f"error: No conversation {bobs}." in out  # another operator's is like none
    assert "Unknown command /bogus" in out
    # /sessions lists both of this operator's conversations, the current one marked, never Bob's
    listing = out.split(f"New conversation {sessions[1]}.")[1].split("error:")[0]
    assert re.search(rf"{sessions[1]}\s*│\s*\*", listing) and sessions[0] in listing and bobs not in listing

    rows = _conversations(settings)
    mine = [r for r in rows if r["actor"] == ACTOR]
    assert [r["id"] for r in mine] == sessions
    assert mine[0]["customer_id"] == cust and mine[0]["profile"] == "operator"
    assert mine[1]["customer_id"] is None


def test_repl_proposal_card_and_confirm(settings, scripted_llm):  # noqa: F811 (fixture)
    """With a model: the proposal is a card saying exactly what will happen and to type /confirm;
    only the operator's /confirm, in a later REPL, carries it out."""
    from decimal import Decimal

    from cli.main import app
    from core.context import SYSTEM
    from ops import promotions
    from ops.runtime import Runtime

    async def with_rt(make):
        rt = Runtime.create(settings, pool_size=1)
        try:
            return await make(rt)
        finally:
            await rt.close()

    async def promo(rt):
        from domains.catalog.promotions import Promotion

        async with rt.db() as s:
            return await s.get(Promotion, "AUTUMN5")

    asyncio.run(
        with_rt(
            lambda rt: promotions.create(
                rt,
                SYSTEM,
                promotions.NewPromotion(
                    code="AUTUMN5",
                    name="Autumn five",
                    discount_type="absolute",
                    discount_value=Decimal("5"),
                    periods=1,
                    code_kind="multi_use",
                ),
            )
        )
    )
    scripted_llm.push(call("promo_exhaust", code="AUTUMN5"), text("I can end AUTUMN5 for you."))
    with bss_cli(settings, actor=ACTOR) as bss:
        first = bss.runner.invoke(app, [], input="end the autumn promo please\n/sessions\nexit\n")
        out = first.output
        assert first.exit_code == 0, out
        assert "· promo_exhaust(" in out and "I can end AUTUMN5 for you." in out
        card = re.search(r"Proposal (PROP-[0-9a-f]{8})", out)
        assert card and "type /confirm to do it, /cancel to drop it" in out and "What will happen" in out
        assert asyncio.run(with_rt(promo)).state == "active"  # nothing happened yet
        session_id = re.search(r"(SESS-[0-9a-f]{8})", out).group(1)
        # a later REPL: /switch shows the pending card again, /confirm carries it out
        second = bss.runner.invoke(app, [], input=f"/switch {session_id}\n/confirm\nexit\n")
        assert second.exit_code == 0, second.output
        assert second.output.count(card.group(1)) >= 2 and "confirmed" in second.output
    assert asyncio.run(with_rt(promo)).state == "exhausted"
