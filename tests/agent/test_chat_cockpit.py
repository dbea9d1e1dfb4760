"""The cockpit's chat panel over HTTP (the app in-process, real Postgres, the scripted
OpenAI-compatible model): an answer streamed over SSE, a proposal shown with its confirm button and
carried out only by the operator's CSRF-checked POST, never by the turn itself."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import select

from agent import store
from core.context import RequestContext
from ops import promotions
from tests.agent.chat_helpers import csrf_of, new_customer, sse_events
from tests.agent.scripted_llm import call, text
from tests.portals.cockpit_harness import cheap_hashes, cockpit_client, operator, sign_in  # noqa: F401 (fixture)

CTX = RequestContext(actor="chat-test", channel="scenario", service_identity="test")
ADMIN = "chief@example.com"


async def _promo_state(runtime, code: str) -> str:
    async with runtime.db() as s:
        from domains.catalog.promotions import Promotion

        return (await s.exec(select(Promotion).where(Promotion.code == code))).one().state


async def _audit(runtime, event_type: str) -> list:
    from domains.audit.models import DomainEvent

    async with runtime.db() as s:
        return list((await s.exec(select(DomainEvent).where(DomainEvent.event_type == event_type))).all())


async def test_cockpit_chat_streams_and_confirms_only_on_the_post(
    settings,
    runtime,
    scripted_llm,
    cheap_hashes,  # noqa: F811 (the fixture)
):
    await promotions.create(
        runtime,
        CTX,
        promotions.NewPromotion(
            code="SPRING10",
            name="Spring ten",
            discount_type="percent",
            discount_value=Decimal("10"),
            periods=1,
            code_kind="multi_use",
        ),
    )
    await operator(runtime, ADMIN, "admin")
    await operator(runtime, "other@example.com", "admin")
    scripted_llm.push(
        call("promo_exhaust", code="SPRING10"),
        # the model claims it is done and even "types" /confirm: nothing may follow from its words
        text("Done: SPRING10 is ended. /confirm"),
    )
    async with cockpit_client(settings, runtime) as client:
        assert (await sign_in(client, ADMIN)).status_code == 303
        home = await client.get("/chat")
        made = await client.post("/chat/new", data={"csrf_token": csrf_of(home.text)})
        assert made.status_code == 303
        session_id = made.headers["location"].rsplit("/", 1)[1]
        page = await client.get(f"/chat/{session_id}")
        token = csrf_of(page.text)
        assert "data-chat-stream" in page.text and "/static/chat.js" in page.text

        # sending without the CSRF token is refused, and the model is never asked
        refused = await client.post(
            f"/chat/{session_id}/send", data={"text": "end it"}, headers={"X-Chat-Stream": "1"}
        )
        assert refused.status_code == 403 and scripted_llm.requests == []

        asked = await client.post(
            f"/chat/{session_id}/send",
            data={"text": "End the spring promo", "csrf_token": token},
            headers={"X-Chat-Stream": "1"},
        )
        assert asked.status_code == 200, asked.text
        stream_url = asked.json()["stream"]
        streamed = await client.get(stream_url)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = sse_events(streamed.text)
        kinds = [k for k, _ in events]
        assert kinds.count("token") >= 2  # the answer arrives in pieces
        assert "".join(d["text"] for k, d in events if k == "token") == "Done: SPRING10 is ended. /confirm"
        assert ("tool", {"name": "promo_exhaust"}) in events
        proposal = next(d for k, d in events if k == "proposal")
        assert proposal["state"] == "pending" and "SPRING10" in proposal["summary"]
        assert kinds[-1] == "done"
        assert scripted_llm.requests[0]["stream"] is True

        # the turn (and the model's "/confirm") did nothing
        assert await _promo_state(runtime, "SPRING10") == "active"
        assert await _audit(runtime, "promotion.exhausted") == []
        # the stream ticket is one-time
        assert (await client.get(stream_url)).status_code == 404

        page = await client.get(f"/chat/{session_id}")
        assert f"Proposal {proposal['id']}" in page.text and "Confirm: do it" in page.text
        assert "End the spring promo" in page.text  # the log shows the conversation

        # another operator cannot see it, stream it or confirm it
        async with cockpit_client(settings, runtime) as other:
            await sign_in(other, "other@example.com")
            assert (await other.get(f"/chat/{session_id}")).status_code == 404
            other_token = csrf_of((await other.get("/chat")).text)
            stolen = await other.post(
                f"/chat/{session_id}/confirm", data={"csrf_token": other_token, "proposal": proposal["id"]}
            )
            assert stolen.status_code in (303, 404)
        # a confirm without the CSRF token is refused
        assert (
            await client.post(f"/chat/{session_id}/confirm", data={"proposal": proposal["id"]})
        ).status_code == 403
        assert await _promo_state(runtime, "SPRING10") == "active"

        done = await client.post(
            f"/chat/{session_id}/confirm", data={"csrf_token": token, "proposal": proposal["id"]}
        )
        assert done.status_code == 303

        # from a customer's page: a new conversation pinned on them; without a model, said plainly
        cust = await new_customer(runtime, "Ada")
        pinned = await client.post("/chat/new", data={"csrf_token": token, "customer": cust})
        second = pinned.headers["location"].rsplit("/", 1)[1]
        assert (await store.get_session(runtime, second, ADMIN)).customer_id == cust
        settings.llm_base_url = None
        plain = await client.post(f"/chat/{second}/send", data={"text": "hello", "csrf_token": token})
        assert plain.status_code == 303
        assert "No language model is configured" in (await client.get(f"/chat/{second}")).text
    assert await _promo_state(runtime, "SPRING10") == "exhausted"
    [exhausted] = await _audit(runtime, "promotion.exhausted")
    assert (exhausted.actor, exhausted.channel) == (ADMIN, "llm")
    [confirmed] = await _audit(runtime, "agent.proposal.confirmed")
    assert confirmed.actor == ADMIN and confirmed.payload["proposalId"] == proposal["id"]
