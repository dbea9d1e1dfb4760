"""Who is acting, through which door: stamped on every audit row."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestContext:
    actor: str = "system"
    channel: str = "system"
    service_identity: str = "default"
    trace_id: str | None = field(default=None)


SYSTEM = RequestContext()
