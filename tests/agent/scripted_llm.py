"""A scripted OpenAI-compatible chat-completions server for the agent tests.

It listens on a free port (uvicorn in a thread), answers `POST /v1/chat/completions` with the next
response of its script, streamed (SSE) when the request says `stream: true`, and records every
request it got, so the real `langchain-openai` client path is exercised and no live model is needed.

    with ScriptedLLM([call("line_status", line_id="SUB-000001"), text("The line is blocked.")]) as llm:
        settings.llm_base_url = llm.base_url   # or the `scripted_llm` fixture, which does this
        ...
        assert llm.requests[1]["messages"][-1]["role"] == "tool"

A script item is `text(...)`, `call(...)` / `calls(...)` (tool calls with JSON arguments), a raw
dict (sent as the assistant message), or a callable taking the request and returning one of those
(for a model that reads what it was given). An exhausted script answers `EXHAUSTED` as plain text.
Each response reports `usage` (scripted with `usage=`, otherwise a rough count).

Fixtures: `scripted_llm` (a fresh script per test, the test's `settings` pointed at it) and
`llm_server` (the server, one per session/worker).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

EXHAUSTED = "(the scripted model has nothing more to say)"
MODEL = "scripted-model"


def text(content: str, *, usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A plain assistant answer."""
    return {"message": {"role": "assistant", "content": content}, "usage": usage}


def call(name: str, _usage: dict[str, int] | None = None, /, **arguments: Any) -> dict[str, Any]:
    """One tool call with these arguments."""
    return calls((name, arguments), usage=_usage)


def calls(
    *tool_calls: tuple[str, dict[str, Any]], content: str = "", usage: dict[str, int] | None = None
) -> dict[str, Any]:
    """Several tool calls in one answer: calls(("a", {...}), ("b", {...}))."""
    return {
        "message": {
            "role": "assistant",
            "content": content or None,
            "tool_calls": [
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args in tool_calls
            ],
        },
        "usage": usage,
    }


Scripted = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def _count_usage(request: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    prompt = max(1, len(json.dumps(request.get("messages", []))) // 4)
    completion = max(1, len(json.dumps(message)) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ScriptedLLM:
    """The server and its script; `requests` holds every JSON body received, in order."""

    def __init__(self, script: list[Scripted] | None = None) -> None:
        self.script: list[Scripted] = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- script -------------------------------------------------------------------------------
    def push(self, *items: Scripted) -> None:
        with self._lock:
            self.script.extend(items)

    def reset(self, script: list[Scripted] | None = None) -> None:
        with self._lock:
            self.script = list(script or [])
            self.requests = []

    @property
    def remaining(self) -> int:
        return len(self.script)

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool messages the client sent back, decoded when they are JSON, in order (deduplicated
        across requests, since each request repeats the conversation)."""
        seen: dict[str, Any] = {}
        for req in self.requests:
            for m in req.get("messages", []):
                if m.get("role") == "tool" and m.get("tool_call_id") not in seen:
                    content = m.get("content")
                    try:
                        content = json.loads(content)
                    except (TypeError, ValueError):
                        pass
                    seen[m.get("tool_call_id")] = content
        return list(seen.values())

    def _next(self, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        with self._lock:
            self.requests.append(request)
            item: Scripted = self.script.pop(0) if self.script else text(EXHAUSTED)
        if callable(item):
            item = item(request)
        if "message" not in item:  # a raw assistant message
            item = {"message": item, "usage": None}
        message = item["message"]
        return message, item.get("usage") or _count_usage(request, message)

    # -- HTTP ---------------------------------------------------------------------------------
    def _app(self) -> Any:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            message, usage = self._next(body)
            cid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
            created = int(time.time())
            finish = "tool_calls" if message.get("tool_calls") else "stop"
            if not body.get("stream"):
                return JSONResponse(
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": body.get("model") or MODEL,
                        "choices": [
                            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                        ],
                        "usage": usage,
                    }
                )
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse(cid, created, body.get("model") or MODEL, message, finish, usage, include_usage),
                media_type="text/event-stream",
            )

        @app.get("/v1/models")
        async def models() -> Any:
            return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "tests"}]}

        return app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedLLM:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the scripted LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sse(
    cid: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish: str,
    usage: dict[str, int],
    include_usage: bool,
) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    content = message.get("content") or ""
    # A few words per chunk, so a streaming surface sees several tokens.
    words = content.split(" ")
    for i in range(0, len(words), 3):
        piece = " ".join(words[i : i + 3])
        yield chunk({"content": piece if i == 0 else " " + piece})
    for index, tc in enumerate(message.get("tool_calls") or []):
        args = tc["function"]["arguments"]
        half = len(args) // 2
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": tc["id"],
                        "type": "function",
                        "function": {"name": tc["function"]["name"], "arguments": args[:half]},
                    }
                ]
            }
        )
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
    yield chunk({}, finish)
    if include_usage:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
        }
        body["usage"] = usage
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ScriptedLLM]:
    """One scripted server per session (per xdist worker); `scripted_llm` resets it per test."""
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def scripted_llm(llm_server: ScriptedLLM, settings: Any) -> Iterator[ScriptedLLM]:
    """The scripted server with an empty script, and the test's settings pointed at it
    (`scripted_llm.push(text(...), call(...))` then run the agent on `runtime`)."""
    from pydantic import SecretStr

    llm_server.reset()
    settings.llm_base_url = llm_server.base_url
    settings.llm_model = MODEL
    settings.llm_api_key = SecretStr("test-key")
    yield llm_server
    llm_server.reset()
