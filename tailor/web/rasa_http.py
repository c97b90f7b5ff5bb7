"""The web app's HTTP client to the Rasa server, with the app's lifetime.

An ``httpx.AsyncClient`` made once when the app is built and closed when it stops serving
cannot serve a second start of the same app (tests, an ASGI server that restarts its
lifespan): every call to Rasa then failed with "client has been closed". This wrapper makes
the client on first use and again after it was closed.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["RasaHTTP"]


class RasaHTTP:
    """``get``/``post`` to the Rasa server at ``base_url``; ``aclose`` at shutdown."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        return self._http

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """``GET url`` (relative to the Rasa server)."""
        return await self._client().get(url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """``POST url`` (relative to the Rasa server)."""
        return await self._client().post(url, **kwargs)

    async def aclose(self) -> None:
        """Close the connections; the next call opens a new client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
