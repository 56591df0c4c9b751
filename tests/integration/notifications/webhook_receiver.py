"""A partner's webhook receiver for tests: a real HTTP server that checks the hub's signature.

It verifies as a partner would, written from the documented rule rather than with the
hub's own signing code: HMAC-SHA256(secret, ``<X-Hub-Timestamp>.<raw body>``), hex,
prefixed ``sha256=``, compared in constant time, timestamp at most five minutes off.
A bad or stale signature gets 401; a path it is told to fail answers that status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from tests.fixtures.sms_provider import LocalHttpServer

SECRET = b"partner-shared-secret-0123456789abcdef"


def partner_verifies(secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp, given = lower.get("x-hub-timestamp", ""), lower.get("x-hub-signature-256", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class ReceivedDelivery:
    path: str
    headers: Mapping[str, str]
    body: bytes

    def event(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.body)
        return loaded


class WebhookReceiver:
    def __init__(self, secret: bytes = SECRET) -> None:
        self.secret = secret
        self.received: list[ReceivedDelivery] = []
        self.refused: list[ReceivedDelivery] = []  # bad signature
        self.answers: dict[str, int] = {}  # path -> status to answer
        self._lock = threading.Lock()
        self._server = LocalHttpServer(self._respond)

    def url(self, path: str = "/hooks/hub") -> str:
        return self._server.base_url + path

    def answer(self, path: str, status: int) -> None:
        with self._lock:
            self.answers[path] = status

    def _respond(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        delivery = ReceivedDelivery(path, headers, body)
        with self._lock:
            if not partner_verifies(self.secret, headers, body, now=time.time()):
                self.refused.append(delivery)
                return 401, b'{"error": "bad signature"}'
            status = self.answers.get(path)
            if status is not None:
                return status, b'{"error": "told to fail"}'
            self.received.append(delivery)
        return 204, b""

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
