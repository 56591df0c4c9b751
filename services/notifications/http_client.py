"""One POST with httpx, its failures translated into delivery errors (used for SMS and webhooks)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.notifications.domain import http_failure
from services.notifications.errors import TemporaryDeliveryError


class HttpPoster:
    """Holds one connection pool; created lazily so it binds to the running event loop."""

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str], what: str) -> None:
        if self._client is None:
            # No redirects: a signed or authorised request must reach the configured host only.
            self._client = httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False)
        try:
            response = await self._client.post(url, content=content, headers=dict(headers))
        except httpx.TransportError as error:  # refused, reset, DNS, timeouts
            raise TemporaryDeliveryError(f"{what} unreachable: {type(error).__name__}") from error
        failure = http_failure(response.status_code)
        if failure is not None:
            # The status only: a response body may echo the recipient, which is personal data.
            raise failure(f"{what} answered HTTP {response.status_code} {response.reason_phrase}".rstrip())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
