"""The portal's customer chat over HTTP (the app in-process, real Postgres, the scripted model):
escalation opens a case for the signed-in customer carrying the transcript's SHA-256, a person can
be asked for without any model, and the per-customer caps refuse politely before the model is asked."""

from __future__ import annotations

from sqlmodel import select

from agent import store
from agent.escalation import transcript_sha256
from tests.agent.chat_helpers import csrf_of, new_customer, portal_as, say
from tests.agent.scripted_llm import call, text


async def _cases(runtime, customer_id: str) -> list:
    from domains.crm.models import CaseNote, SupportCase

    async with runtime.db() as s:
        cases = list((await s.exec(select(SupportCase).where(SupportCase.customer_id == customer_id))).all())
        notes = {
            c.id: [n.body for n in (await s.exec(select(CaseNote).where(CaseNote.case_id == c.id))).all()]
            for c in cases
        }
    return [(c, notes[c.id]) for c in cases]


async def test_chat_escalation_opens_a_case_with_the_transcript_hash(settings, runtime, scripted_llm):
    ada = await new_customer(runtime, "Ada")
    bob = await new_customer(runtime, "Bob")
    scripted_llm.push(
        call("escalate_to_case", category="fraud", summary="Two charges the customer does not recognise."),
        lambda req: text(f"I have opened a case for you: {req['messages'][-1]['content']}"),
    )
    async with portal_as(settings, runtime, ada) as client:
        sent = await say(client, "Someone charged my card twice and it was not me")
        assert sent.status_code == 303
        page = await client.get("/chat")
    # the escalation tool was offered to the model, bound to Ada (no customer parameter)
    offered = {t["function"]["name"]: t["function"] for t in scripted_llm.requests[0]["tools"]}
    assert "customer_id" not in offered["escalate_to_case"]["parameters"].get("properties", {})

    [(case, notes)] = await _cases(runtime, ada)
    assert (case.category, case.priority, case.subject) == ("account", "critical", "Chat escalation: Fraud")
    assert case.opened_by == ada
    [conv] = await store.list_sessions(runtime, ada)
    assert conv.profile == "customer" and conv.customer_id == ada
    # the description's hash covers what was stored when it opened (nothing before this first turn),
    # the note's covers the whole turn, the customer's words included
    assert f"Transcript SHA-256: {transcript_sha256([])}" in case.description
    assert f"Conversation: {conv.id}" in case.description and "Category: fraud" in case.description
    history = await store.history(runtime, conv.id, ada)
    assert history[0].content == "Someone charged my card twice and it was not me"
    assert notes == [
        f"Transcript SHA-256 after the chat turn: {transcript_sha256(history)} ({len(history)} messages, {conv.id})."
    ]
    assert case.id in page.text  # the answer names the case
    assert await _cases(runtime, bob) == []


async def test_talk_to_a_person_without_a_model(settings, runtime):
    ada = await new_customer(runtime, "Ada")
    async with portal_as(settings, runtime, ada) as client:
        page = await client.get("/chat")
        assert "not available right now" in page.text and 'name="text"' not in page.text
        opened = await client.post(
            "/chat/escalate", data={"category": "bereavement", "csrf_token": csrf_of(page.text)}
        )
        assert opened.status_code == 303
        after = await client.get("/chat")
        bad = await client.post(
            "/chat/escalate", data={"category": "lottery", "csrf_token": csrf_of(page.text)}
        )
        assert bad.status_code == 400
    [(case, _)] = await _cases(runtime, ada)
    assert (case.category, case.priority, case.subject) == ("account", "high", "Chat escalation: Bereavement")
    assert case.id in after.text
    assert transcript_sha256([]) in case.description


async def test_chat_caps_refuse_politely_before_asking_the_model(settings, runtime, scripted_llm):
    settings.chat_turns_per_hour = 2
    ada = await new_customer(runtime, "Ada")
    scripted_llm.push(
        text("Hello!", usage={"prompt_tokens": 400, "completion_tokens": 100, "total_tokens": 500})
    )
    scripted_llm.push(
        text("Still here.", usage={"prompt_tokens": 400, "completion_tokens": 100, "total_tokens": 500})
    )
    async with portal_as(settings, runtime, ada) as client:
        assert (await say(client, "hi")).status_code == 303
        assert (await say(client, "again")).status_code == 303
        third = await say(client, "and again")
        assert third.status_code == 429
        assert "2 messages in the last hour" in third.text
        assert len(scripted_llm.requests) == 2  # the model was not asked the third time
        # htmx gets the refusal in the log fragment (it swaps only a 2xx)
        page = await client.get("/chat")
        frag = await client.post(
            "/chat/send",
            data={"text": "htmx", "csrf_token": csrf_of(page.text)},
            headers={"HX-Request": "true"},
        )
        assert frag.status_code == 200 and "2 messages in the last hour" in frag.text
        # the token cap: 1000 tokens used today, the cap 1000
        settings.chat_turns_per_hour, settings.chat_tokens_per_day = 100, 1000
        refused = await say(client, "one more")
        assert refused.status_code == 429 and "come back tomorrow" in refused.text
    assert len(scripted_llm.requests) == 2
    [conv] = await store.list_sessions(runtime, ada)
    assert conv.tokens_used == 1000
    assert [m.content for m in await store.history(runtime, conv.id, ada) if m.role == "user"] == [
        "hi",
        "again",
    ]


async def test_chat_proposal_needs_the_portal_step_up(settings, runtime, scripted_llm):
    """What the assistant proposes is confirmed like the portal's own pages: the confirm page spells
    it out, and without a fresh step-up code nothing is done; /chat/cancel drops it."""
    from tests.agent.chat_helpers import new_line

    ada = await new_customer(runtime, "Ada")
    line_id, _ = await new_line(runtime, ada)
    scripted_llm.push(
        call("top_up", line_id=line_id, vas_id="VAS_DATA_1GB"), text("I can add 1 GB; review and confirm it.")
    )
    async with portal_as(settings, runtime, ada) as client:
        assert (await say(client, "I need more data")).status_code == 303
        [conv] = await store.list_sessions(runtime, ada)
        pending = await store.pending_proposal(runtime, conv.id, ada)
        assert pending is not None and pending.tool == "top_up"
        page = await client.get("/chat")
        assert f'href="/chat/confirm?proposal={pending.id}"' in page.text
        review = await client.get(f"/chat/confirm?proposal={pending.id}")
        assert (
            review.status_code == 200
            and "Data Top-Up 1GB" in review.text
            and "Email me a code" in review.text
        )
        refused = await client.post(
            "/chat/confirm", data={"proposal": pending.id, "csrf_token": csrf_of(review.text)}
        )
        assert refused.status_code >= 400 and "code" in refused.text.lower()
        assert (await store.pending_proposal(runtime, conv.id, ada)).id == pending.id  # still only proposed
        dropped = await client.post("/chat/cancel", data={"csrf_token": csrf_of(page.text)})
        assert dropped.status_code == 303
    [proposal] = await store.proposals(runtime, conv.id, ada)
    assert proposal.state == "cancelled" and proposal.result is None


async def test_each_escalation_category_opens_its_case_from_the_chat(settings, runtime, scripted_llm):
    """Fraud, billing dispute, regulator complaint, identity recovery and bereavement: the model's
    escalation opens one case per category, with the handbook's case category and priority."""
    from agent.escalation import CATEGORIES, case_subject

    ada = await new_customer(runtime, "Ada")
    async with portal_as(settings, runtime, ada) as client:
        for category in CATEGORIES:
            scripted_llm.push(
                call(
                    "escalate_to_case", category=category, summary=f"The customer needs a person: {category}."
                ),
                text("A colleague will take this up."),
            )
            assert (await say(client, f"I need help with {category.replace('_', ' ')}")).status_code == 303
    opened = {case.subject: (case.category, case.priority) for case, _ in await _cases(runtime, ada)}
    assert opened == {case_subject(c): (case_cat, prio) for c, (_, case_cat, prio) in CATEGORIES.items()}
