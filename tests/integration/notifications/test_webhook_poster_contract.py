"""One suite, two adapters: the in-memory webhook poster and the HTTP adapter against a real receiver.

The receiver checks the signature as a partner would (``webhook_receiver.partner_verifies``).
"""

from __future__ import annotations

import abc
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hub.local.embedded.ports import free_port
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.webhook_poster import (
    HttpWebhookPoster,
    InMemoryWebhookPoster,
    ReceivedPost,
    WebhookPost,
    WebhookPoster,
)
from tests.integration.notifications.webhook_receiver import SECRET, WebhookReceiver, partner_verifies

pytestmark = pytest.mark.asyncio

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _event() -> bytes:
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": "ch.lu.hub.case.delivery.v1",
        "data": {"ä": 1},
    }
    return json.dumps(event, ensure_ascii=False).encode()


def _post(url: str, body: bytes, secret: bytes = SECRET) -> WebhookPost:
    return WebhookPost(url, secret, body, "webhook-1", {"traceparent": TRACEPARENT})


class WebhookPosterContract(abc.ABC):
    """The shared suite; each Test* subclass supplies one adapter (the fake or the real one)."""

    @abc.abstractmethod
    def url(self, path: str) -> str: ...

    @abc.abstractmethod
    def received_at(self, url: str) -> list[ReceivedPost]: ...

    @abc.abstractmethod
    def answer(self, url: str, status: int) -> None: ...

    @abc.abstractmethod
    def unreachable_poster(self) -> WebhookPoster: ...

    async def test_a_delivery_arrives_as_a_signed_cloudevent(self, poster: WebhookPoster) -> None:
        url, body = self.url("/hooks/a"), _event()
        await poster.post(_post(url, body))
        [received] = self.received_at(url)
        assert received.body == body  # byte for byte: the signature covers exactly these
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert partner_verifies(SECRET, headers, received.body, now=time.time())
        assert headers["content-type"].startswith("application/cloudevents+json")
        assert headers["x-hub-delivery"] == "webhook-1"
        assert headers["traceparent"] == TRACEPARENT

    @pytest.mark.parametrize("status", [429, 500, 502])
    async def test_overload_and_server_errors_are_temporary_failures(
        self, poster: WebhookPoster, status: int
    ) -> None:
        url = self.url(f"/hooks/{status}")
        self.answer(url, status)
        with pytest.raises(TemporaryDeliveryError, match=str(status)):
            await poster.post(_post(url, _event()))

    @pytest.mark.parametrize("status", [400, 404, 410])
    async def test_other_client_errors_are_permanent_failures(
        self, poster: WebhookPoster, status: int
    ) -> None:
        url = self.url(f"/hooks/{status}")
        self.answer(url, status)
        with pytest.raises(PermanentDeliveryError, match=str(status)):
            await poster.post(_post(url, _event()))

    async def test_an_unreachable_receiver_is_a_temporary_failure(self) -> None:
        with pytest.raises(TemporaryDeliveryError):
            await self.unreachable_poster().post(_post(f"http://127.0.0.1:{free_port()}/hooks", _event()))


class TestInMemoryWebhookPoster(WebhookPosterContract):
    @pytest.fixture
    def poster(self) -> WebhookPoster:
        self.fake = InMemoryWebhookPoster()
        return self.fake

    def url(self, path: str) -> str:
        return f"https://partner.example.ch{path}"

    def received_at(self, url: str) -> list[ReceivedPost]:
        return [p for p in self.fake.received if p.url == url]

    def answer(self, url: str, status: int) -> None:
        self.fake.answers[url] = status

    def unreachable_poster(self) -> WebhookPoster:
        return InMemoryWebhookPoster(unreachable=True)


class TestHttpWebhookPoster(WebhookPosterContract):
    @pytest_asyncio.fixture
    async def poster(self, webhook_receiver: WebhookReceiver) -> AsyncIterator[WebhookPoster]:
        self.receiver = webhook_receiver
        poster = HttpWebhookPoster(timeout_s=5)
        yield poster
        await poster.aclose()

    def url(self, path: str) -> str:
        return self.receiver.url(path)

    def received_at(self, url: str) -> list[ReceivedPost]:
        return [
            ReceivedPost(url, r.headers, r.body)
            for r in self.receiver.received
            if self.receiver.url(r.path) == url
        ]

    def answer(self, url: str, status: int) -> None:
        self.receiver.answer(url.removeprefix(self.receiver.url("")), status)

    def unreachable_poster(self) -> WebhookPoster:
        return HttpWebhookPoster(timeout_s=2)

    async def test_a_wrong_secret_is_refused_by_the_partner(self, poster: WebhookPoster) -> None:
        url = self.url("/hooks/a")
        with pytest.raises(PermanentDeliveryError, match="401"):
            await poster.post(_post(url, _event(), secret=b"not-the-partners-secret-000"))
        assert len(self.receiver.refused) == 1
        assert self.received_at(url) == []

    async def test_an_old_timestamp_is_refused_by_the_partner(
        self, webhook_receiver: WebhookReceiver
    ) -> None:
        stale = HttpWebhookPoster(timeout_s=5, clock=lambda: time.time() - 3600)
        try:
            with pytest.raises(PermanentDeliveryError, match="401"):
                await stale.post(_post(webhook_receiver.url("/hooks/a"), _event()))
        finally:
            await stale.aclose()
