"""One suite, two adapters: the in-memory SMS sender and the HTTP adapter against a real local provider."""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

from hub.local.embedded.ports import free_port
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.sms_sender import HttpSmsSender, InMemorySmsSender, SmsMessage, SmsSender
from tests.fixtures.sms_provider import FakeSmsProvider

pytestmark = pytest.mark.asyncio

TEXT = "Grüezi Anna, Ihre Umzugsmeldung ist eingegangen: äöü €"


def _number() -> str:
    return "+4179" + str(uuid.uuid4().int)[:7]


class SmsSenderContract(abc.ABC):
    """The shared suite; each Test* subclass supplies one adapter (the fake or the real one)."""

    @abc.abstractmethod
    def delivered_to(self, number: str) -> list[tuple[str, str]]:
        """(text, reference) of what reached the provider for ``number``."""
        ...

    @abc.abstractmethod
    def answer(self, number: str, status: int) -> None: ...

    @abc.abstractmethod
    def unreachable_sender(self) -> SmsSender: ...

    async def test_a_sent_message_arrives_intact_with_its_reference(self, sender: SmsSender) -> None:
        number = _number()
        await sender.send(SmsMessage(to=number, text=TEXT, reference="eumzug-1:received"))
        assert self.delivered_to(number) == [(TEXT, "eumzug-1:received")]

    @pytest.mark.parametrize("status", [400, 404, 422])
    async def test_a_refusal_is_a_permanent_failure(self, sender: SmsSender, status: int) -> None:
        number = _number()
        self.answer(number, status)
        with pytest.raises(PermanentDeliveryError, match=str(status)):
            await sender.send(SmsMessage(to=number, text=TEXT, reference="r"))
        assert self.delivered_to(number) == []

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_overload_and_server_errors_are_temporary_failures(
        self, sender: SmsSender, status: int
    ) -> None:
        number = _number()
        self.answer(number, status)
        with pytest.raises(TemporaryDeliveryError, match=str(status)):
            await sender.send(SmsMessage(to=number, text=TEXT, reference="r"))

    async def test_an_unreachable_provider_is_a_temporary_failure(self) -> None:
        with pytest.raises(TemporaryDeliveryError):
            await self.unreachable_sender().send(SmsMessage(to=_number(), text=TEXT, reference="r"))

    async def test_failures_do_not_reveal_the_number(self, sender: SmsSender) -> None:
        number = _number()
        self.answer(number, 400)
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(SmsMessage(to=number, text=TEXT, reference="r"))
        assert number not in str(caught.value)


class TestInMemorySmsSender(SmsSenderContract):
    @pytest.fixture
    def sender(self) -> SmsSender:
        self.fake = InMemorySmsSender()
        return self.fake

    def delivered_to(self, number: str) -> list[tuple[str, str]]:
        return [(m.text, m.reference) for m in self.fake.sent if m.to == number]

    def answer(self, number: str, status: int) -> None:
        self.fake.answers[number] = status

    def unreachable_sender(self) -> SmsSender:
        return InMemorySmsSender(unreachable=True)


class TestHttpSmsSender(SmsSenderContract):
    @pytest_asyncio.fixture
    async def sender(self, sms_provider: FakeSmsProvider) -> AsyncIterator[SmsSender]:
        self.provider = sms_provider
        sender = HttpSmsSender(sms_provider.url, SecretStr(sms_provider.token), timeout_s=5)
        yield sender
        await sender.aclose()

    def delivered_to(self, number: str) -> list[tuple[str, str]]:
        return [(m.text, m.reference) for m in self.provider.messages_to(number)]

    def answer(self, number: str, status: int) -> None:
        self.provider.answer(number, status)

    def unreachable_sender(self) -> SmsSender:
        return HttpSmsSender(f"http://127.0.0.1:{free_port()}/v1/messages", SecretStr("t" * 20), timeout_s=2)

    async def test_a_wrong_token_is_refused_for_good_and_never_shown(
        self, sms_provider: FakeSmsProvider
    ) -> None:
        sender = HttpSmsSender(sms_provider.url, SecretStr("wrong-token-0123456789"), timeout_s=5)
        try:
            with pytest.raises(PermanentDeliveryError, match="401") as caught:
                await sender.send(SmsMessage(to=_number(), text=TEXT, reference="r"))
        finally:
            await sender.aclose()
        assert "wrong-token" not in str(caught.value)
        assert "wrong-token" not in repr(vars(sender))
