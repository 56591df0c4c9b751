"""One suite, two adapters: the in-memory stores of notifications may not drift from PostgreSQL's.

Every test works through the ports (``services.notifications.ports``) and the erasure port;
what only an adapter can do (erase a case's person, let time pass, read what was emitted)
is an abstract hook each subclass supplies.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import pytest
import pytest_asyncio

from contracts import Channel, DeliveryStatus, NotificationStatusChanged
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from hub.runtime.outbox import OutboxEmitter
from hub.vault import store as vault_store
from hub.vault.crypto import ERASED_TEXT, MasterKey, case_ref
from services.erasure import PersonErasure
from services.notifications.adapters.memory import (
    ManualClock,
    MemoryNotificationsErasure,
    MemoryStore,
    MemoryUnitsOfWork,
)
from services.notifications.adapters.postgres import NotificationsErasure, PostgresUnitsOfWork
from services.notifications.domain import (
    ERASED_REASON,
    UNREADABLE_AFTER_ERASURE,
    NewInboxMessage,
    NewNotification,
    Outcome,
    Preference,
)
from services.notifications.ports import UnitsOfWork
from tests.integration.notifications.conftest import migrated_pool

pytestmark = pytest.mark.asyncio

SOURCE = "urn:ch:lu:hub:service:notifications"
PARTNER = "CH/MUN/1059/einwohnerdienste"
SECRET = "s3cr3t-s3cr3t-s3cr3t"


def notice(
    notification_id: str,
    *,
    case_id: str = "eumzug-1",
    channel: Channel = Channel.EMAIL,
    recipient: str = "anna.muster@example.ch",
    citizen_id: str | None = None,
) -> NewNotification:
    return NewNotification(
        notification_id=notification_id,
        case_id=case_id,
        channel=channel.value,
        recipient=recipient,
        template="relocation.received",
        subject=f"Ihre Umzugsmeldung {case_id}",
        body=f"Grüezi Anna, {notification_id}",
        test_delivery=False,
        traceparent=None,
        tracestate=None,
        language="de",
        template_version=1,
        template_source="relocation.received",
        citizen_id=citizen_id,
    )


def inbox_message(notification_id: str, *, citizen_id: str, case_id: str = "eumzug-1") -> NewInboxMessage:
    return NewInboxMessage(
        notification_id=notification_id,
        citizen_id=citizen_id,
        case_id=case_id,
        template="relocation.received",
        language="de",
        subject=f"Umzug {case_id}",
        body=f"Grüezi, {notification_id}",
    )


class NotificationsStoreContract(abc.ABC):
    """What every adapter of the notifications ports promises handlers and workers."""

    @abc.abstractmethod
    async def erase_case(self, case_id: str) -> None:
        """Destroy the data key of the case's person, as ``hub person erase`` does."""

    @abc.abstractmethod
    async def age(self, seconds: float) -> None:
        """Let ``seconds`` pass for every stored notice."""

    @abc.abstractmethod
    async def emitted_types(self) -> list[str]:
        """The event types committed units of work emitted, in order."""

    @abc.abstractmethod
    def erasure(self) -> AbstractAsyncContextManager[PersonErasure]:
        """The service's erasure port, in a transaction of the erasing command."""

    # The lifecycle of a notice.

    async def test_a_new_notice_is_created_readable_with_its_history(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert await uow.notifications.add(notice("n1", citizen_id="citizen-1"))
        async with units.begin() as uow:
            [stored] = await uow.notifications.of_case("eumzug-1")
            assert await uow.notifications.history("n1") == [("created", None)]
        assert (stored.notification_id, stored.status, stored.attempts) == ("n1", DeliveryStatus.CREATED, 0)
        assert (stored.recipient, stored.subject, stored.body) == (
            "anna.muster@example.ch",
            "Ihre Umzugsmeldung eumzug-1",
            "Grüezi Anna, n1",
        )
        assert (stored.citizen_id, stored.unreadable) == ("citizen-1", None)

    async def test_a_notice_added_again_is_refused_and_changes_nothing(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert await uow.notifications.add(notice("n1"))
        async with units.begin() as uow:
            assert not await uow.notifications.add(notice("n1", recipient="other@example.ch"))
            [stored] = await uow.notifications.of_case("eumzug-1")
            assert await uow.notifications.history("n1") == [("created", None)]
        assert stored.recipient == "anna.muster@example.ch"

    async def test_claiming_hands_out_due_notices_once_in_the_order_they_were_requested(
        self, units: UnitsOfWork
    ) -> None:
        for notification_id in ("n-b", "n-a"):  # two requests, the later one first by name
            async with units.begin() as uow:
                await uow.notifications.add(notice(notification_id))
        async with units.begin() as uow:  # one request, two notices: by name
            await uow.notifications.add(notice("n-d"))
            await uow.notifications.add(notice("n-c"))
        async with units.begin() as uow:
            claimed = await uow.notifications.claim_due(10)
        assert [p.notification_id for p in claimed] == ["n-b", "n-a", "n-c", "n-d"]
        assert [p.attempts for p in claimed] == [1, 1, 1, 1]
        assert claimed[0].recipient == "anna.muster@example.ch"
        assert claimed[0].body == "Grüezi Anna, n-b"
        async with units.begin() as uow:
            assert await uow.notifications.claim_due(10) == []
            assert await uow.notifications.history("n-a") == [("created", None), ("sending", None)]

    async def test_claiming_takes_at_most_the_limit(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            for n in range(3):
                await uow.notifications.add(notice(f"n{n}", case_id=f"eumzug-{n}"))
        async with units.begin() as uow:
            assert len(await uow.notifications.claim_due(2)) == 2
            assert len(await uow.notifications.claim_due(2)) == 1

    async def test_a_limit_takes_the_oldest_requests_and_a_case_after_its_earlier_notices(
        self, units: UnitsOfWork
    ) -> None:
        for notification_id, case_id in (("a1", "eumzug-1"), ("b1", "eumzug-2"), ("a2", "eumzug-1")):
            async with units.begin() as uow:
                await uow.notifications.add(notice(notification_id, case_id=case_id))
        async with units.begin() as uow:
            assert [p.notification_id for p in await uow.notifications.claim_due(2)] == ["a1", "b1"]
            # a1 is being sent: a2 may not go out alongside it, and so not before it.
            assert await uow.notifications.claim_due(10) == []
            await uow.notifications.finish("a1", DeliveryStatus.DELIVERED, detail=None)
            assert [p.notification_id for p in await uow.notifications.claim_due(10)] == ["a2"]

    async def test_a_later_notice_of_a_case_waits_for_the_retry_of_an_earlier_one(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("received"))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)
            await uow.notifications.finish(
                "received", DeliveryStatus.TEMPORARY_FAILURE, detail="SMTP 451", retry_in_s=60
            )
        async with units.begin() as uow:
            await uow.notifications.add(notice("completed"))
            await uow.notifications.add(notice("completed:inbox", channel=Channel.INBOX))
            await uow.notifications.add(notice("other", case_id="eumzug-2"))
        async with units.begin() as uow:
            # The inbox copy is another channel, and the other case another case: neither waits.
            claimed = [p.notification_id for p in await uow.notifications.claim_due(10)]
        assert claimed == ["completed:inbox", "other"]
        await self.age(61)
        async with units.begin() as uow:
            assert [p.notification_id for p in await uow.notifications.claim_due(10)] == [
                "received",
                "completed",
            ]

    async def test_a_finished_earlier_notice_holds_nothing_back_whatever_its_outcome(
        self, units: UnitsOfWork
    ) -> None:
        for notification_id in ("received", "completed"):
            async with units.begin() as uow:
                await uow.notifications.add(notice(notification_id))
        async with units.begin() as uow:
            [first, _] = await uow.notifications.claim_due(10)
            await uow.notifications.release(["completed"], reason="waits")
            await uow.notifications.finish(
                first.notification_id, DeliveryStatus.PERMANENT_FAILURE, detail="550"
            )
        async with units.begin() as uow:
            assert [p.notification_id for p in await uow.notifications.claim_due(10)] == ["completed"]

    async def test_notices_given_back_unsent_are_due_as_before_without_counting_an_attempt(
        self, units: UnitsOfWork
    ) -> None:
        for notification_id in ("received", "completed"):
            async with units.begin() as uow:
                await uow.notifications.add(notice(notification_id))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)
            await uow.notifications.release(["received", "completed"], reason="waits for x")
            await uow.notifications.release(["completed"], reason="twice changes nothing")
            [completed, received] = await uow.notifications.of_case("eumzug-1")  # by id
            assert await uow.notifications.history("completed") == [
                ("created", None),
                ("sending", None),
                ("created", "waits for x"),
            ]
        assert (received.status, received.attempts) == (DeliveryStatus.CREATED, 0)
        assert (completed.status, completed.attempts) == (DeliveryStatus.CREATED, 0)
        async with units.begin() as uow:  # a notice tried before goes back to waiting for its retry
            [again, _] = await uow.notifications.claim_due(10)
            await uow.notifications.finish("received", DeliveryStatus.TEMPORARY_FAILURE, detail="451")
            await uow.notifications.release(["completed"], reason="waits for received")
        await self.age(1)
        async with units.begin() as uow:
            [retried, completed_again] = await uow.notifications.claim_due(10)
            await uow.notifications.release([retried.notification_id], reason="given back")
            [_, received] = await uow.notifications.of_case("eumzug-1")
        assert again.attempts == 1
        assert (completed_again.notification_id, completed_again.attempts) == ("completed", 1)
        assert (received.status, received.attempts, received.last_error) == (
            DeliveryStatus.TEMPORARY_FAILURE,
            1,
            "451",
        )

    async def test_notices_added_together_are_each_queued_once(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert await uow.notifications.add(notice("n1"))
        async with units.begin() as uow:
            added = await uow.notifications.add_all(
                [
                    notice("n1", recipient="other@example.ch"),
                    notice("n2"),
                    notice("n2:inbox", channel=Channel.INBOX),
                ]
            )
            assert await uow.notifications.add_all([]) == set()
        assert added == {"n2", "n2:inbox"}
        async with units.begin() as uow:
            stored = {n.notification_id: n for n in await uow.notifications.of_case("eumzug-1")}
            assert await uow.notifications.history("n2:inbox") == [("created", None)]
            assert await uow.notifications.history("n1") == [("created", None)]
        assert (stored["n1"].recipient, stored["n2"].body) == ("anna.muster@example.ch", "Grüezi Anna, n2")
        assert stored["n2:inbox"].channel == "inbox"

    async def test_outcomes_recorded_together_are_each_recorded(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            for n in range(3):
                await uow.notifications.add(notice(f"n{n}", case_id=f"eumzug-{n}"))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)
            await uow.notifications.finish_all(
                [
                    Outcome("n0", DeliveryStatus.DELIVERED),
                    Outcome("n1", DeliveryStatus.TEMPORARY_FAILURE, "SMTP 451", retry_in_s=0.5),
                    Outcome("n2", DeliveryStatus.PERMANENT_FAILURE, "SMTP 550"),
                ]
            )
            await uow.notifications.finish_all([])
            assert await uow.notifications.history("n1") == [
                ("created", None),
                ("sending", None),
                ("temporary-failure", "SMTP 451"),
            ]
            assert await uow.notifications.claim_due(10) == []
        await self.age(1)  # half a second is a retry, not nothing
        async with units.begin() as uow:
            [retried] = await uow.notifications.claim_due(10)
            [delivered] = await uow.notifications.of_case("eumzug-0")
            [refused] = await uow.notifications.of_case("eumzug-2")
        assert retried.notification_id == "n1"
        assert (delivered.status, refused.status, refused.last_error) == (
            DeliveryStatus.DELIVERED,
            DeliveryStatus.PERMANENT_FAILURE,
            "SMTP 550",
        )

    async def test_a_temporary_failure_is_due_again_after_its_retry_time(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("n1"))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)
            await uow.notifications.finish(
                "n1", DeliveryStatus.TEMPORARY_FAILURE, detail="SMTP 451", retry_in_s=60
            )
        async with units.begin() as uow:
            assert await uow.notifications.claim_due(10) == []
        await self.age(61)
        async with units.begin() as uow:
            [again] = await uow.notifications.claim_due(10)
            [stored] = await uow.notifications.of_case("eumzug-1")
        assert again.attempts == 2
        assert (stored.status, stored.last_error) == (DeliveryStatus.SENDING, "SMTP 451")

    async def test_a_finished_notice_is_not_claimed_again(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("n1"))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)
            await uow.notifications.finish("n1", DeliveryStatus.DELIVERED, detail=None)
        await self.age(3600)
        async with units.begin() as uow:
            assert await uow.notifications.claim_due(10) == []
            assert await uow.notifications.history("n1") == [
                ("created", None),
                ("sending", None),
                ("delivered", None),
            ]

    async def test_a_notice_left_sending_past_its_lease_is_due_again(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("n1"))
        async with units.begin() as uow:
            await uow.notifications.claim_due(10)  # ...and the dispatcher died
        async with units.begin() as uow:
            assert await uow.notifications.requeue_stale_sending(older_than_s=120) == 0
        await self.age(121)
        async with units.begin() as uow:
            assert await uow.notifications.requeue_stale_sending(older_than_s=120) == 1
            [again] = await uow.notifications.claim_due(10)
        assert again.attempts == 2

    async def test_an_erased_persons_notices_read_as_erased(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("before"))
        await self.erase_case("eumzug-1")
        async with units.begin() as uow:
            await uow.notifications.add(notice("after"))
            await uow.notifications.add(notice("other", case_id="eumzug-2"))
        async with units.begin() as uow:
            claimed = {p.notification_id: p for p in await uow.notifications.claim_due(10)}
            [stored, _] = await uow.notifications.of_case("eumzug-1")
        for name in ("before", "after"):
            assert claimed[name].erased
            assert claimed[name].recipient == claimed[name].body == ERASED_TEXT
        assert not claimed["other"].erased
        assert claimed["other"].recipient == "anna.muster@example.ch"
        assert (stored.unreadable, stored.subject) == (ERASED_REASON, ERASED_TEXT)

    # Units of work.

    async def test_a_unit_of_work_that_fails_leaves_nothing_and_emits_nothing(
        self, units: UnitsOfWork
    ) -> None:
        async def failing_handler() -> None:
            async with units.begin() as uow:
                await uow.notifications.add(notice("n1"))
                await uow.preferences.set_opted_out("citizen-1", True)
                await uow.emitter.emit(
                    _status("n1"), topic=topics.NOTIFICATION_STATUS, business_process_id="c"
                )
                raise RuntimeError("the handler failed")

        with pytest.raises(RuntimeError):
            await failing_handler()
        async with units.begin() as uow:
            assert await uow.notifications.of_case("eumzug-1") == []
            assert await uow.preferences.preference_of("citizen-1") is None
        assert await self.emitted_types() == []

    async def test_a_committed_unit_of_work_emits_its_events(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.emitter.emit(_status("n1"), topic=topics.NOTIFICATION_STATUS, business_process_id="c")
        assert await self.emitted_types() == [NotificationStatusChanged.event_type]

    async def test_queuing_a_notice_wakes_whoever_waits_for_due_notices(self, units: UnitsOfWork) -> None:
        woken = asyncio.Event()
        async with units.on_due(woken.set):
            async with units.begin() as uow:
                await uow.notifications.add(notice("n1"))
            await asyncio.wait_for(woken.wait(), 5)

    # Preferences.

    async def test_a_citizens_channel_and_opt_out_are_kept_apart(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert await uow.preferences.preference_of("citizen-1") is None
            await uow.preferences.prefer_channel("citizen-1", Channel.SMS)
            await uow.preferences.set_opted_out("citizen-1", True)
            assert await uow.preferences.preference_of("citizen-1") == Preference(Channel.SMS, True)
            await uow.preferences.set_opted_out("citizen-1", False)
            await uow.preferences.set_opted_out("citizen-2", True)
            assert await uow.preferences.preference_of("citizen-1") == Preference(Channel.SMS, False)
            assert await uow.preferences.preference_of("citizen-2") == Preference(None, True)

    # The inbox.

    async def test_the_inbox_shows_a_citizens_messages_newest_first_once_each(
        self, units: UnitsOfWork
    ) -> None:
        for n, case_id in enumerate(("eumzug-1", "eumzug-2")):
            async with units.begin() as uow:
                await uow.notifications.add(notice(f"n{n}", case_id=case_id, channel=Channel.INBOX))
                await uow.inbox.store(inbox_message(f"n{n}", citizen_id="citizen-1", case_id=case_id))
            await self.age(1)
        async with units.begin() as uow:
            await uow.notifications.add(notice("x", channel=Channel.INBOX))
            await uow.inbox.store(inbox_message("x", citizen_id="citizen-2"))
            await uow.inbox.store(
                NewInboxMessage(
                    "n0", "citizen-1", "eumzug-1", "relocation.received", "de", "changed", "changed"
                )
            )
        async with units.begin() as uow:
            messages = await uow.inbox.of("citizen-1")
            assert await uow.inbox.of("nobody") == []
        assert [(m.notification_id, m.case_id) for m in messages] == [("n1", "eumzug-2"), ("n0", "eumzug-1")]
        assert (messages[1].subject, messages[1].body) == ("Umzug eumzug-1", "Grüezi, n0")
        assert messages[0].delivered_at >= messages[1].delivered_at
        assert (messages[0].read_at, messages[0].unreadable) == (None, None)

    async def test_inbox_messages_stored_together_are_each_kept_once(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            for n, case_id in enumerate(("eumzug-1", "eumzug-2")):
                await uow.notifications.add(notice(f"n{n}", case_id=case_id, channel=Channel.INBOX))
            await uow.inbox.store(inbox_message("n0", citizen_id="citizen-1"))
        async with units.begin() as uow:
            await uow.inbox.store_all(
                [
                    NewInboxMessage("n0", "citizen-1", "eumzug-1", "relocation.received", "de", "new", "new"),
                    inbox_message("n1", citizen_id="citizen-2", case_id="eumzug-2"),
                ]
            )
            await uow.inbox.store_all([])
        async with units.begin() as uow:
            [first] = await uow.inbox.of("citizen-1")
            [second] = await uow.inbox.of("citizen-2")
        assert (first.notification_id, first.subject) == ("n0", "Umzug eumzug-1")
        assert (second.notification_id, second.case_id, second.body) == ("n1", "eumzug-2", "Grüezi, n1")

    async def test_an_erased_persons_inbox_messages_read_as_erased(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("n1", channel=Channel.INBOX))
            await uow.inbox.store(inbox_message("n1", citizen_id="citizen-1"))
        await self.erase_case("eumzug-1")
        async with units.begin() as uow:
            [message] = await uow.inbox.of("citizen-1")
        assert message.erased
        assert message.subject == message.body == ERASED_TEXT

    # Webhooks.

    async def test_a_partners_webhook_is_found_by_partner_and_topic_and_replaced(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.webhooks.put(PARTNER, "https://kriens.example.ch/hub", SECRET)
            await uow.webhooks.put(PARTNER, "https://kriens.example.ch/v2", SECRET + "-new")
        async with units.begin() as uow:
            [endpoint] = await uow.webhooks.all()
            assert await uow.webhooks.of(PARTNER) == endpoint
            assert await uow.webhooks.for_topic(topics.delivery_topic(PARTNER)) == endpoint
            assert await uow.webhooks.for_topic("hub.delivery.ch.mun.1061.einwohnerdienste") is None
            assert await uow.webhooks.of("CH/MUN/1061/einwohnerdienste") is None
            assert await uow.webhooks.topics() == {"hub.delivery.ch.mun.1059.einwohnerdienste"}
        assert (endpoint.url, endpoint.secret) == ("https://kriens.example.ch/v2", (SECRET + "-new").encode())
        assert endpoint.updated_at is not None

    @pytest.mark.parametrize(
        ("url", "secret", "complaint"),
        [
            ("ftp://kriens.example.ch", SECRET, "https://"),
            ("https://kriens.example.ch", "short", "at least 16 characters"),
        ],
    )
    async def test_a_bad_webhook_is_refused_and_not_stored(
        self, units: UnitsOfWork, url: str, secret: str, complaint: str
    ) -> None:
        async with units.begin() as uow:
            with pytest.raises(ValueError, match=complaint):
                await uow.webhooks.put(PARTNER, url, secret)
            assert await uow.webhooks.all() == []

    # Erasure.

    async def test_erasure_reports_the_persons_notices_and_deletes_their_preferences(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.notifications.add(notice("a", citizen_id="citizen-a"))
            await uow.notifications.add(notice("a:inbox", channel=Channel.INBOX, citizen_id="citizen-a"))
            await uow.inbox.store(inbox_message("a:inbox", citizen_id="citizen-a"))
            await uow.notifications.add(notice("b", case_id="eumzug-2", citizen_id="citizen-b"))
            for citizen_id in ("citizen-a", "citizen-b"):
                await uow.preferences.set_opted_out(citizen_id, True)
        await self.erase_case("eumzug-1")
        async with self.erasure() as erasure:
            assert await erasure.citizen_ids_of_cases(["eumzug-1"]) == {"citizen-a"}
            assert await erasure.citizen_ids_of_cases([]) == set()
            reports = await erasure.erase(case_ids=["eumzug-1"], citizen_ids={"citizen-a"})
        assert {(r.store, r.done): r.rows for r in reports} == {
            ("notifications.notifications", UNREADABLE_AFTER_ERASURE): 2,
            ("notifications.inbox_messages", UNREADABLE_AFTER_ERASURE): 1,
            ("notifications.citizen_preferences", "deleted"): 1,
        }
        async with units.begin() as uow:
            assert await uow.preferences.preference_of("citizen-a") is None
            assert await uow.preferences.preference_of("citizen-b") == Preference(None, True)
            assert all(n.erased for n in await uow.notifications.claim_due(10) if n.case_id == "eumzug-1")
            [kept] = await uow.notifications.of_case("eumzug-2")
        assert kept.unreadable is None


def _status(notification_id: str) -> NotificationStatusChanged:
    return NotificationStatusChanged(
        notification_id=notification_id,
        channel=Channel.EMAIL,
        status=DeliveryStatus.DELIVERED,
        template="relocation.received",
    )


class TestMemoryNotificationsStore(NotificationsStoreContract):
    @pytest.fixture
    def units(self) -> UnitsOfWork:
        self.clock = ManualClock()
        self.store = MemoryStore(clock=self.clock)
        self.emitter = RecordingEmitter(source=SOURCE)
        return MemoryUnitsOfWork(self.store, self.emitter)

    async def erase_case(self, case_id: str) -> None:
        self.store.erase_case(case_id)

    async def age(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def emitted_types(self) -> list[str]:
        return [e.envelope.type for e in self.emitter.emitted]

    @asynccontextmanager
    async def erasure(self) -> AsyncIterator[PersonErasure]:
        yield MemoryNotificationsErasure(self.store)


class TestPostgresNotificationsStore(NotificationsStoreContract):
    @pytest_asyncio.fixture
    async def units(self, database_url: str, vault_master_key: MasterKey) -> AsyncIterator[UnitsOfWork]:
        self.database_url = database_url
        self.pool = await migrated_pool(database_url)
        yield PostgresUnitsOfWork(
            self.pool, master=vault_master_key, emitter=functools.partial(OutboxEmitter, source=SOURCE)
        )
        await self.pool.close()

    async def erase_case(self, case_id: str) -> None:
        async with self.pool.acquire() as conn:
            await vault_store.destroy(conn, refs=[case_ref(case_id)])

    async def age(self, seconds: float) -> None:
        async with self.pool.acquire() as conn:
            shift = "make_interval(secs => $1)"
            await conn.execute(
                f"UPDATE notifications SET created_at = created_at - {shift}, "
                f"updated_at = updated_at - {shift}, next_attempt_at = next_attempt_at - {shift}",
                seconds,
            )
            await conn.execute(f"UPDATE inbox_messages SET delivered_at = delivered_at - {shift}", seconds)

    async def emitted_types(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return [row["type"] for row in await conn.fetch("SELECT type FROM outbox ORDER BY seq")]

    @asynccontextmanager
    async def erasure(self) -> AsyncIterator[PersonErasure]:
        # As the erase command runs it: on identity's connection, whose search path is not notifications'.
        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": "public"})
        try:
            async with conn.transaction():
                yield NotificationsErasure(conn)
        finally:
            await conn.close()

    async def test_claims_at_the_same_time_take_turns_so_a_case_is_not_split(
        self, units: UnitsOfWork
    ) -> None:
        for notification_id in ("received", "completed"):
            async with units.begin() as uow:
                await uow.notifications.add(notice(notification_id))

        async def claim_alongside() -> list[str]:
            async with units.begin() as uow:
                return [p.notification_id for p in await uow.notifications.claim_due(10)]

        async with units.begin() as first:
            [claimed] = await first.notifications.claim_due(1)
            second = asyncio.create_task(claim_alongside())
            await asyncio.sleep(0.3)
            assert not second.done()  # it waits for the first claim to commit...
        # ...and then sees "received" being sent: "completed" must not go out alongside it.
        assert claimed.notification_id == "received"
        assert await asyncio.wait_for(second, 5) == []

    async def test_a_database_without_notifications_tables_has_nothing_to_erase(
        self, database_url: str
    ) -> None:
        conn = await asyncpg.connect(database_url)  # notifications never ran against this database
        try:
            erasure = NotificationsErasure(conn)
            assert await erasure.citizen_ids_of_cases(["eumzug-1"]) == set()
            reports = await erasure.erase(case_ids=["eumzug-1"], citizen_ids={"citizen-a"})
        finally:
            await conn.close()
        assert [(r.store, r.done, r.rows) for r in reports] == [
            ("notifications.citizen_preferences", "deleted", 0)
        ]
