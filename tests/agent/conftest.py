"""Fixtures of the agent tests: the scripted OpenAI-compatible server (tests/agent/scripted_llm.py)."""

from tests.agent.scripted_llm import llm_server, scripted_llm  # noqa: F401 (fixtures)
