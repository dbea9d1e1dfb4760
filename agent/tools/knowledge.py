"""The handbook search tool, shared by the operator and the customer tool sets."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.tools.base import Args, ToolSet
from core.errors import NotFound
from ops.runtime import Runtime


def _knowledge_tool(ts: ToolSet, rt: Runtime) -> None:
    class KnowledgeArgs(Args):
        query: str = Field(min_length=2, max_length=300, description="What to look up, in plain words.")
        limit: int = Field(5, ge=1, le=10)

    @ts.add(
        "knowledge_search",
        "Search the operator handbook and the project docs (plans, rules, how to handle a blocked "
        "line, porting, refunds). Answers passages with their source path and anchor: cite them as "
        "[source#anchor] when you use them.",
        KnowledgeArgs,
        ops=("agent.knowledge.knowledge_search",),
    )
    async def _(a: Any, key: str | None) -> Any:
        try:
            from agent.knowledge import knowledge_search
        except ImportError:
            raise NotFound("knowledge.unavailable", "The handbook search is not installed here.") from None
        return await knowledge_search(rt, a.query, limit=a.limit)


# ================================================================================== operator tools
