"""Sending SMS through an HTTP provider; the adapter and its in-memory fake share one test suite.

The provider takes ``POST <url>`` with JSON ``{"to", "text", "reference"}`` and the bearer
token. 2xx: delivered; 429, 5xx and network errors: try later; other 4xx: never.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import SecretStr

from services.notifications.domain import http_failure
from services.notifications.errors import TemporaryDeliveryError
from services.notifications.http_client import HttpPoster


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    text: str
    reference: str  # the notification id: the provider's receipts and our records meet on it


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> None: ...


class HttpSmsSender:
    def __init__(self, url: str, token: SecretStr, *, timeout_s: float = 10.0) -> None:
        self._url, self._token = url, token
        self._http = HttpPoster(timeout_s=timeout_s)

    async def send(self, message: SmsMessage) -> None:
        body = json.dumps({"to": message.to, "text": message.text, "reference": message.reference})
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._token.get_secret_value()}",
        }
        await self._http.post(self._url, content=body.encode("utf-8"), headers=headers, what="SMS provider")

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass
class InMemorySmsSender:
    """Fake: keeps messages; answers an HTTP status it is told to per number, as the provider might."""

    sent: list[SmsMessage] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # number -> HTTP status to fail with
    unreachable: bool = False

    async def send(self, message: SmsMessage) -> None:
        if self.unreachable:
            raise TemporaryDeliveryError("SMS provider unreachable: fake outage")
        status = self.answers.get(message.to, 202)
        failure = http_failure(status)  # the same rule the real adapter applies
        if failure is not None:
            raise failure(f"SMS provider answered HTTP {status}")
        self.sent.append(message)
