"""Knowledge: the operator handbook and the project's docs, searched with Postgres full-text search.

`knowledge_search(rt, query)` answers with citations, each naming the file (repo-relative), the
section's anchor, its title, a snippet with the matched words in **bold**, and the rank. The index
(schema `knowledge`, domains/knowledge/models.py) holds one row per Markdown section of
docs/handbook/*.md, README.md, HACKING.md and docs/architecture.md. It is kept up to date
lazily: before a search the files' SHA-256 are compared with the index's, and a changed, new or
removed file is indexed again (under an advisory lock, so two processes never index at once).
A process remembers the files' sizes and mtimes it last checked, so a search with nothing changed
costs no extra query.

Only full-text search: pgvector similarity would need an embedding model shipped inside an
installed wheel (nothing may be downloaded at run time), and none is installed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.clock import clock
from core.db import transaction

ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = "docs/handbook"
DOCS = ("README.md", "HACKING.md", "docs/architecture.md")
MAX_QUERY = 400
MAX_LIMIT = 20
HANDBOOK_BOOST = 2.0  # the handbook answers operators' questions; the other docs explain the code
EVERY_WORD_BOOST = 1.25  # a section holding every word of the query, not only some
LOCK_KEY = 0x6B6E6F77  # pg_advisory_xact_lock key of a reindex ("know")

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str
    position: int


@dataclass
class IndexReport:
    indexed: list[str]  # files (re)indexed
    removed: list[str]  # files no longer there
    unchanged: int
    chunks: int  # rows written


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[`*_~\[\]()]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def split_sections(markdown: str, fallback_title: str) -> list[Section]:
    """One section per heading (any level), with the text up to the next heading; headings inside
    code fences are code. The text before the first `##` belongs to the document's title."""
    doc_title = fallback_title
    heads: list[tuple[int, str, list[str]]] = []  # level, heading, lines
    preamble: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            level, heading = len(m.group(1)), m.group(2).strip()
            if level == 1 and not heads and doc_title == fallback_title:
                doc_title = heading
            heads.append((level, heading, []))
        elif heads:
            heads[-1][2].append(line)
        else:
            preamble.append(line)
    sections: list[Section] = []
    seen: dict[str, int] = {}
    trail: list[tuple[int, str]] = []  # the headings above the current one
    for level, heading, lines in heads:
        trail = [(lv, h) for lv, h in trail if lv < level] + [(level, heading)]
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchor = base if n == 0 else f"{base}-{n}"
        body = "\n".join(lines).strip()
        if level == 1 and preamble:
            body = ("\n".join(preamble).strip() + "\n\n" + body).strip()
        if not body:
            continue
        names = [h for lv, h in trail if lv > 1]
        title = " › ".join([doc_title, *names]) if names else doc_title
        sections.append(Section(anchor[:200], title[:300], body, len(sections)))
    if not heads and markdown.strip():
        sections.append(Section(slug(doc_title), doc_title, markdown.strip(), 0))
    return sections


def source_files(root: Path = ROOT) -> list[Path]:
    files = sorted((root / HANDBOOK).glob("*.md"))
    files += [root / name for name in DOCS if (root / name).is_file()]
    return files


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _kind(source: str) -> str:
    return "handbook" if source.startswith(HANDBOOK + "/") else "docs"


# database url -> {source: (mtime_ns, size)} of the files as they were when last found indexed
_checked: dict[str, dict[str, tuple[int, int]]] = {}


def _stats(files: list[Path], root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for f in files:
        st = f.stat()
        out[_rel(f, root)] = (st.st_mtime_ns, st.st_size)
    return out


async def reindex(rt: Any, *, force: bool = False, root: Path = ROOT) -> IndexReport:
    """Index every changed, new or removed file (all of them with `force`)."""
    files = source_files(root)
    stats = _stats(files, root)
    contents = {_rel(f, root): f.read_bytes() for f in files}
    hashes = {src: hashlib.sha256(data).hexdigest() for src, data in contents.items()}
    report = IndexReport([], [], 0, 0)
    async with transaction(rt.db) as s:
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        rows = await s.execute(
            text("SELECT source, min(source_hash) FROM knowledge.doc_chunk GROUP BY source")
        )
        stored = dict(rows.all())
        for gone in sorted(set(stored) - set(hashes)):
            await s.execute(text("DELETE FROM knowledge.doc_chunk WHERE source = :s"), {"s": gone})
            report.removed.append(gone)
        now = clock.now()
        for src, digest in hashes.items():
            if not force and stored.get(src) == digest:
                report.unchanged += 1
                continue
            await s.execute(text("DELETE FROM knowledge.doc_chunk WHERE source = :s"), {"s": src})
            fallback = Path(src).stem.replace("-", " ").capitalize()
            rows_out = [
                {
                    "source": src,
                    "anchor": sec.anchor,
                    "title": sec.title,
                    "kind": _kind(src),
                    "position": sec.position,
                    "body": sec.body,
                    "hash": digest,
                    "at": now,
                }
                for sec in split_sections(contents[src].decode("utf-8", "replace"), fallback)
            ]
            if rows_out:
                await s.execute(
                    text(
                        "INSERT INTO knowledge.doc_chunk "
                        "(source, anchor, title, kind, position, body, source_hash, indexed_at) "
                        "VALUES (:source, :anchor, :title, :kind, :position, :body, :hash, :at)"
                    ),
                    rows_out,
                )
            report.indexed.append(src)
            report.chunks += len(rows_out)
    _checked[rt.settings.database_url] = stats
    return report


async def ensure_index(rt: Any, *, root: Path = ROOT) -> IndexReport | None:
    """Reindex if a file changed since this process last looked (None: nothing to look at)."""
    if _checked.get(rt.settings.database_url) == _stats(source_files(root), root):
        return None
    return await reindex(rt, root=root)


_SEARCH = text(
    """
    WITH w AS (SELECT websearch_to_tsquery('english', :q) AS q_all),
    q AS (
        -- Any word may match (ranked by how many and how well), unless the query excludes a word.
        -- The lexemes are stemmed already: 'simple' only parses them back.
        SELECT q_all,
               CASE WHEN strpos(q_all::text, '!') > 0 THEN q_all
                    ELSE to_tsquery('simple', replace(q_all::text, ' & ', ' | ')) END AS q_any
        FROM w
    )
    SELECT c.title, c.source, c.anchor, c.kind,
           ts_rank(c.tsv, q.q_any, 1)
             * CASE WHEN c.kind = 'handbook' THEN :boost ELSE 1 END
             * CASE WHEN c.tsv @@ q.q_all THEN :every ELSE 1 END AS rank,
           ts_headline('english', c.body, q.q_any,
                       'MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" … ", '
                       'StartSel=**, StopSel=**') AS snippet
    FROM knowledge.doc_chunk c, q
    WHERE numnode(q.q_any) > 0 AND c.tsv @@ q.q_any
    ORDER BY rank DESC, c.source, c.position
    LIMIT :limit
    """
)


async def knowledge_search(rt: Any, query: str, limit: int = 5) -> list[dict[str, Any]]:
    """The handbook and docs sections that best answer `query` (plain words; "quoted phrases" and
    -excluded words work as in a web search), best first: ranked on the words they hold, the
    handbook and sections holding every word ranked up. Each is a citation {title, source, anchor, snippet, rank}; [] when nothing
    matches or the query has no searchable word."""
    query = (query or "").strip()[:MAX_QUERY]
    if not query:
        return []
    limit = max(1, min(int(limit), MAX_LIMIT))
    await ensure_index(rt)
    async with rt.db() as s:
        rows = (
            (
                await s.execute(
                    _SEARCH, {"q": query, "limit": limit, "boost": HANDBOOK_BOOST, "every": EVERY_WORD_BOOST}
                )
            )
            .mappings()
            .all()
        )
    return [
        {
            "title": r["title"],
            "source": r["source"],
            "anchor": r["anchor"],
            "snippet": " ".join(r["snippet"].split()),
            "rank": round(float(r["rank"]), 4),
        }
        for r in rows
    ]
