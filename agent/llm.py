"""The chat model behind the agent: any OpenAI-compatible endpoint (BSS_LLM_BASE_URL, BSS_LLM_MODEL,
BSS_LLM_API_KEY). LangChain is imported only when a model is built, so nothing else pays for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

NOT_CONFIGURED = (
    "No language model is configured for this BSS (set BSS_LLM_BASE_URL, and BSS_LLM_MODEL and "
    "BSS_LLM_API_KEY if the endpoint needs them). Everything else works; slash commands too."
)


def llm_configured(settings: Settings) -> bool:
    return bool((settings.llm_base_url or "").strip())


def chat_model(settings: Settings, *, streaming: bool = False, **overrides: Any) -> ChatOpenAI:
    """A ChatOpenAI client on the configured endpoint (raises RuntimeError when none is)."""
    if not llm_configured(settings):
        raise RuntimeError(NOT_CONFIGURED)
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else "not-needed"
    options: dict[str, Any] = {
        "base_url": settings.llm_base_url,
        "model": settings.llm_model,
        "api_key": key,
        "temperature": 0,
        "timeout": 60,
        "max_retries": 1,
        "streaming": streaming,
        "stream_usage": True,
    }
    options.update(overrides)
    return ChatOpenAI(**options)
