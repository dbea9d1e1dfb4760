"""The CLI's door into the TMF API: the same operations, policy checks and audit as every channel."""

from __future__ import annotations

import os
from typing import Any

from core.settings import get_settings


class CliError(Exception):
    """One sentence for a person, with the exit code of CONTRACT.md (1: refused or not found)."""

    def __init__(self, message: str, exit_code: int = 1, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.body = body or {}


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, transport: Any = None) -> None:
        import httpx

        settings = get_settings()
        self.base_url = base_url or os.environ.get("BSS_API_URL") or settings.api_url
        token = token or settings.api_token
        if token is None and settings.token_file.exists():
            token = settings.token_file.read_text().strip()
        headers = {"X-BSS-Channel": "cli"}
        # The audit log names the token's owner; only a channel token may say it acts for someone
        # else, so the actor is sent only when asked for (BSS_ACTOR) and the API refuses it otherwise.
        if os.environ.get("BSS_ACTOR"):
            headers["X-BSS-Actor"] = os.environ["BSS_ACTOR"]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=60, transport=transport)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(f"Cannot reach the BSS API at {self.base_url}; start it with `bss up`.") from None
        except httpx.HTTPError as exc:
            raise CliError(f"The BSS API at {self.base_url} did not answer: {exc}.") from None
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {}
            message = body.get("message") or r.text or r.reason_phrase
            reason = body.get("reason")
            if r.status_code == 401:
                raise CliError(
                    "The API refused the token; `bss up` writes it to .bss/api-token, or set BSS_API_TOKEN.",
                    body=body,
                )
            text = f"{message} [{reason}]" if reason and reason not in message else message
            raise CliError(text, body=body)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        """The API's raw answer (an httpx.Response) whatever its status, for callers that check the
        status themselves (the scenario runner); only an unreachable API raises CliError."""
        import httpx

        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"The BSS API at {self.base_url} did not answer: {exc}.") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


_client: ApiClient | None = None


def api() -> ApiClient:
    global _client
    if _client is None:
        _client = ApiClient()
    return _client


def use_client(client: ApiClient | None) -> None:
    """Tests point the CLI at an in-process app or a test stack."""
    global _client
    _client = client
