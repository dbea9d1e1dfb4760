"""knowledge_search: a handbook question answered with a citation of the right file and section;
the index follows the files (a changed file is indexed again, a removed one dropped, an unchanged
one left alone); the handbook's plan and top-up figures are the seeded catalogue's."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from agent.knowledge import ROOT, knowledge_search, reindex, slug, split_sections


def _anchors(source: str) -> set[str]:
    return {s.anchor for s in split_sections((ROOT / source).read_text(), "x")}


async def test_a_handbook_question_is_answered_with_a_citation_of_its_section(runtime):
    hits = await knowledge_search(runtime, "How do I top up a line that is blocked because its data ran out?")
    assert hits, "no citation"
    top = hits[0]
    assert set(top) == {"title", "source", "anchor", "snippet", "rank"}
    assert top["source"] == "docs/handbook/blocked-line.md", hits
    assert top["anchor"] in _anchors(top["source"])
    assert top["title"].startswith("A blocked line")
    assert "**" in top["snippet"] and top["rank"] > 0

    porting = await knowledge_search(runtime, "clearinghouse number_locked port-in approval", limit=3)
    assert porting[0]["source"] == "docs/handbook/porting.md"
    sla = await knowledge_search(
        runtime, "how long may a service outage ticket stay open before its SLA is breached", limit=3
    )
    assert sla[0]["source"] == "docs/handbook/cases-and-slas.md"
    # The other docs are indexed too.
    assert any(
        h["source"] == "HACKING.md" for h in await knowledge_search(runtime, "workflow.patched replay")
    )


async def test_no_searchable_word_is_no_citation(runtime):
    assert await knowledge_search(runtime, "") == []
    assert await knowledge_search(runtime, "the of and") == []
    assert await knowledge_search(runtime, "xyzzyplugh") == []


async def test_the_index_follows_the_files(runtime, tmp_path: Path):
    book = tmp_path / "docs" / "handbook"
    book.mkdir(parents=True)
    page = book / "refunds.md"
    page.write_text("# Refunds\n\nIntro.\n\n## By hand\n\nA supervisor refunds a wombat charge.\n")
    (book / "other.md").write_text("# Other\n\nNothing about marsupials.\n")

    first = await reindex(runtime, root=tmp_path)
    assert sorted(first.indexed) == ["docs/handbook/other.md", "docs/handbook/refunds.md"]
    assert (await reindex(runtime, root=tmp_path)).indexed == []  # unchanged: left alone

    page.write_text("# Refunds\n\n## By hand\n\nA supervisor refunds a platypus charge.\n")
    (book / "other.md").unlink()
    second = await reindex(runtime, root=tmp_path)
    assert second.indexed == ["docs/handbook/refunds.md"] and second.removed == ["docs/handbook/other.md"]
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT source, anchor, title FROM knowledge.doc_chunk "
                    "WHERE tsv @@ websearch_to_tsquery('english', :q)"
                ),
                {"q": "platypus"},
            )
        ).all()
        assert rows == [("docs/handbook/refunds.md", "by-hand", "Refunds › By hand")]
        wombat = await conn.execute(
            text(
                "SELECT count(*) FROM knowledge.doc_chunk WHERE body LIKE '%wombat%' OR source LIKE '%other%'"
            )
        )
        assert wombat.scalar_one() == 0


def test_sections_and_anchors_are_githubs():
    assert slug("Porting in and out") == "porting-in-and-out"
    assert slug("Refunds, disputes & `codes`") == "refunds-disputes--codes"
    md = "# Doc\n\nlead\n\n## A\n\nx\n\n```\n# not a heading\n```\n\n### B\n\ny\n\n## A\n\nz\n"
    secs = split_sections(md, "fallback")
    assert [(s.anchor, s.title) for s in secs] == [
        ("doc", "Doc"),
        ("a", "Doc › A"),
        ("b", "Doc › A › B"),
        ("a-1", "Doc › A"),
    ]
    assert "# not a heading" in secs[1].body


def test_the_handbook_plan_and_top_up_figures_are_the_seeded_catalogue():
    from domains.catalog.seed import PLANS, VAS

    page = (ROOT / "docs/handbook/plans.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_0-9]+)` \|.*$", page, re.M)}
    for plan_id, name, _desc, price, data_mb, *_ in PLANS:
        row = rows[plan_id]
        assert f"| {name} |" in row and f"SGD {Decimal(price):.2f}" in row and f"{data_mb:,} MB" in row, row
    for vas_id, _name, price, _kind, quantity, _expiry in VAS:
        row = rows[vas_id]
        assert f"SGD {Decimal(price):.2f}" in row, row
        assert quantity == -1 or f"{quantity:,} MB" in row, row
    # Every price the handbook names anywhere is one of the catalogue's.
    prices = {f"{Decimal(p[3]):.2f}" for p in PLANS} | {f"{Decimal(v[2]):.2f}" for v in VAS}
    for path in (ROOT / "docs/handbook").glob("*.md"):
        for amount in re.findall(r"SGD (\d+\.\d\d)", path.read_text()):
            assert amount in prices or path.name == "promotions.md", (path.name, amount)
