"""POSTing a delivery to a partner's webhook, signed (see ``signing``); adapter and fake share one suite.

The body is a CloudEvent in structured mode (``application/cloudevents+json``). Headers:
``X-Hub-Timestamp`` and ``X-Hub-Signature-256`` (signed content: ``<timestamp>.<body>``),
``X-Hub-Delivery`` (stable across retries: the partner's dedup key) and W3C trace context.
2xx: delivered; 429, 5xx and network errors: retried with backoff; other 4xx: permanent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from services.notifications.domain import http_failure
from services.notifications.errors import TemporaryDeliveryError
from services.notifications.http_client import HttpPoster
from services.notifications.signing import signature_headers

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DELIVERY_HEADER = "X-Hub-Delivery"


@dataclass(frozen=True)
class WebhookPost:
    url: str
    secret: bytes = field(repr=False)
    body: bytes
    delivery_id: str
    trace_headers: Mapping[str, str] = field(default_factory=dict)


def request_headers(post: WebhookPost, *, now: float) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        DELIVERY_HEADER: post.delivery_id,
        **post.trace_headers,
        **signature_headers(post.secret, post.body, now=now),
    }


class WebhookPoster(Protocol):
    async def post(self, post: WebhookPost) -> None: ...


class HttpWebhookPoster:
    def __init__(self, *, timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self._http, self._clock = HttpPoster(timeout_s=timeout_s), clock

    async def post(self, post: WebhookPost) -> None:
        headers = request_headers(post, now=self._clock())
        await self._http.post(post.url, content=post.body, headers=headers, what="partner webhook")

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass(frozen=True)
class ReceivedPost:
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class InMemoryWebhookPoster:
    """Fake: records what a receiver would get; answers a status it is told to per URL."""

    received: list[ReceivedPost] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # url -> HTTP status to fail with
    unreachable: bool = False
    clock: Callable[[], float] = time.time

    async def post(self, post: WebhookPost) -> None:
        if self.unreachable:
            raise TemporaryDeliveryError("partner webhook unreachable: fake outage")
        status = self.answers.get(post.url, 200)
        failure = http_failure(status)  # the same rule the real adapter applies
        if failure is not None:
            raise failure(f"partner webhook answered HTTP {status}")
        self.received.append(ReceivedPost(post.url, request_headers(post, now=self.clock()), post.body))
