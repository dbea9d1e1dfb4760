"""What a scenario step checks: JSON paths into an output, matchers, and {{variables}}."""

from __future__ import annotations

import json
import re
from typing import Any

from cli.scenario_format import MATCHERS, VAR

MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _segments(path: str) -> list[str]:
    out = []
    for name, bracket in _SEGMENT.findall(path):
        out.append(name if name else bracket)
    return out


def lookup(data: Any, path: str) -> Any:
    """`a.b.0.c`, `a.b[0].c`, `balances[allowanceType=data].remaining`; `$` or "" is the whole."""
    if path in ("", "$"):
        return data
    cur = data
    for seg in _segments(path):
        if isinstance(cur, list):
            if "=" in seg:
                key, _, want = seg.partition("=")
                cur = next((x for x in cur if isinstance(x, dict) and str(x.get(key)) == want), MISSING)
            elif re.fullmatch(r"-?\d+", seg):
                idx = int(seg)
                cur = cur[idx] if -len(cur) <= idx < len(cur) else MISSING
            else:
                return MISSING
        elif isinstance(cur, dict):
            cur = cur.get(seg, MISSING)
        else:
            return MISSING
        if cur is MISSING:
            return MISSING
    return cur


def short(value: Any) -> str:
    text = json.dumps(value, default=str) if value is not MISSING else "nothing"
    return text if len(text) <= 80 else text[:77] + "..."


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_matcher(actual: Any, matcher: Any) -> str | None:
    """None when it holds, else why not (a phrase)."""
    if isinstance(matcher, dict) and len(matcher) == 1 and next(iter(matcher)) in MATCHERS:
        op, want = next(iter(matcher.items()))
    else:
        op, want = "equals", matcher
    if op == "exists":
        present = actual is not MISSING and actual is not None
        return None if present == bool(want) else f"is {short(actual)}"
    if actual is MISSING:
        return "is missing"
    if op == "equals":
        same = actual == want or (
            _num(actual) is not None and _num(actual) == _num(want) and not isinstance(want, bool)
        )
        if isinstance(actual, str) and not isinstance(want, str):
            same = same or actual == str(want)
        return None if same else f"is {short(actual)}, expected {short(want)}"
    if op == "not_equals":
        return None if actual != want else f"is {short(actual)}"
    if op in ("contains", "not_contains"):
        if isinstance(actual, str):
            has = str(want).lower() in actual.lower()
        elif isinstance(actual, list):
            has = any(
                x == want or (isinstance(want, dict) and isinstance(x, dict) and want.items() <= x.items())
                for x in actual
            )
        elif isinstance(actual, dict):
            has = want in actual
        else:
            has = False
        if op == "contains":
            return None if has else f"is {short(actual)}, which does not contain {short(want)}"
        return None if not has else f"is {short(actual)}, which contains {short(want)}"
    if op == "matches":
        return None if re.search(str(want), str(actual)) else f"is {short(actual)}, not matching /{want}/"
    if op in ("gte", "lte"):
        a, w = _num(actual), _num(want)
        if a is None or w is None:
            return f"is {short(actual)}, not a number"
        ok = a >= w if op == "gte" else a <= w
        return None if ok else f"is {short(actual)}, expected {'≥' if op == 'gte' else '≤'} {want}"
    if op == "length":
        n = len(actual) if isinstance(actual, list | dict | str) else None
        return None if n == want else f"has length {n}, expected {want}"
    if op == "in":
        return None if actual in (want or []) else f"is {short(actual)}, not one of {short(want)}"
    return f"unknown matcher {op}"


# ------------------------------------------------------------------------------ variables


def render(value: Any, env: dict[str, Any]) -> Any:
    """Substitute {{var}}; a string that is exactly one variable keeps the variable's type."""
    if isinstance(value, str):
        whole = VAR.fullmatch(value.strip())
        if whole and value.strip() == value:
            return env[whole.group(1)] if whole.group(1) in env else value
        return VAR.sub(lambda m: str(env[m.group(1)]) if m.group(1) in env else m.group(0), value)
    if isinstance(value, list):
        return [render(v, env) for v in value]
    if isinstance(value, dict):
        return {k: render(v, env) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ results
