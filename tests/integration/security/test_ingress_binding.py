"""A partner's ingress topic carries only that partner's events; the shared one only if switched on.

The registry's own ingress route (from its composition root) on real PostgreSQL, record by
record as Kafka would hand them over from each topic. Partner A's correctly signed event
read from partner B's ingress topic is refused with the binding's reason, dead-lettered to
hub.ingress-dlt and sealed as a refusal in the audit chain (A proven as the signer), and
opens no case; the same event on A's own topic is routed. The binding holds with
signatures switched off. ``HUB_SHARED_INGRESS`` decides whether hub.ingress is read at all.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from hub.local.demo import KRIENS_OFFICE, PORTAL, demo_person, move_report, new_case_id
from hub.runtime import topics
from hub.runtime.consumer import Outcome, Route
from hub.runtime.settings import HubSettings
from hub.security.signing import SigningKey
from services.registry import bootstrap
from services.registry.settings import RegistrySettings
from tests.fixtures.registry import ingress_processor, ingress_route, mirror_partner_key, registry_context
from tests.fixtures.signing import Crafted, craft

pytestmark = pytest.mark.asyncio
GROUP = "hub.registry.ingress"


def _ingress(pool: asyncpg.Pool, settings: HubSettings) -> Route:
    return ingress_route(list(bootstrap.routes(registry_context(pool, settings))))


@pytest_asyncio.fixture
async def portal_key(pool: asyncpg.Pool) -> SigningKey:
    return await mirror_partner_key(pool, PORTAL, "portal-binding-1")


def _move(key: SigningKey | None) -> Crafted:
    return craft(move_report(demo_person(5)), partner_id=PORTAL, case_id=new_case_id(), key=key)


async def _row(pool: asyncpg.Pool, sql: str, *args: Any) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(sql, *args)
    return None if row is None else dict(row)


async def _cases(pool: asyncpg.Pool, case_id: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id))


async def test_a_signed_event_on_another_partners_ingress_topic_is_refused_and_audited(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    processor = ingress_processor(pool, hub_settings)
    report = _move(portal_key)  # signed by the portal, correctly
    kriens_topic = topics.ingress_topic(KRIENS_OFFICE)

    assert await processor.process(report.record(7, topic=kriens_topic)) is Outcome.DEAD_LETTERED

    letter = await _row(
        pool,
        "SELECT consumer, topic, error_class, error_message, dead_letter_topic FROM dead_letters"
        " WHERE event_id = $1",
        report.event_id,
    )
    assert letter is not None
    assert (letter["consumer"], letter["topic"], letter["error_class"]) == (
        GROUP,
        kriens_topic,
        "ForeignIngressTopic",
    )
    assert letter["error_message"] == (
        f"event from urn:ch:lu:hub:partner:{PORTAL} on {kriens_topic}:"
        " a partner's ingress topic carries only its own events"
    )
    assert letter["dead_letter_topic"] == "hub.ingress-dlt"  # the one topic tools watch
    async with pool.acquire() as conn:
        published = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'hub.ingress-dlt' AND headers @> $1::jsonb",
            f'[["ce_id", "{report.event_id}"]]',
        )
    assert published == 1
    refusal = await _row(
        pool, "SELECT * FROM audit_log WHERE decision = 'refused' AND event_id = $1", report.event_id
    )
    assert refusal is not None
    assert refusal["partner_id"] == PORTAL
    assert refusal["sender_verified"] is True  # the portal provably sent it, to the wrong topic
    assert refusal["reason_class"] == "not-authorized"
    assert refusal["reason"].startswith("ForeignIngressTopic: event from ")
    assert await _cases(pool, report.envelope.businessprocessid) == 0  # never routed

    # The same event on the portal's own topic is routed: a refusal claims no inbox entry.
    assert await processor.process(report.record(8)) is Outcome.PROCESSED
    assert report.record(8).topic == topics.ingress_topic(PORTAL)
    assert await _cases(pool, report.envelope.businessprocessid) == 1


async def test_a_copy_of_a_processed_event_on_another_partners_topic_is_refused_not_dropped(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    """Kriens learns the id of the portal's move report (a delivery's ``ce_referenceid``) and
    sends a copy under the portal's source and id on its own topic. The inbox has seen that
    source and id: had it been asked first, the copy would vanish as a repeat, with no dead
    letter and nothing in the audit chain. The topic binding is checked before the inbox."""
    processor = ingress_processor(pool, hub_settings)
    report = _move(portal_key)
    assert await processor.process(report.record(1)) is Outcome.PROCESSED  # the genuine report

    copy = report.record(2, topic=topics.ingress_topic(KRIENS_OFFICE))
    assert await processor.process(copy) is Outcome.DEAD_LETTERED
    letter = await _row(
        pool, "SELECT error_class, topic FROM dead_letters WHERE event_id = $1", report.event_id
    )
    assert letter == {"error_class": "ForeignIngressTopic", "topic": topics.ingress_topic(KRIENS_OFFICE)}
    refusal = await _row(
        pool, "SELECT * FROM audit_log WHERE decision = 'refused' AND event_id = $1", report.event_id
    )
    assert refusal is not None
    assert (refusal["partner_id"], refusal["reason_class"]) == (PORTAL, "not-authorized")
    assert await _cases(pool, report.envelope.businessprocessid) == 1  # the genuine one only

    # The same copy on the portal's own topic is what the inbox is for: a repeat, dropped.
    assert await processor.process(report.record(3)) is Outcome.DUPLICATE


async def test_the_binding_holds_with_signatures_switched_off(
    pool: asyncpg.Pool, hub_settings: HubSettings
) -> None:
    processor = ingress_processor(pool, hub_settings.model_copy(update={"require_signatures": False}))
    unsigned = _move(None)
    on_kriens = unsigned.record(1, topic=topics.ingress_topic(KRIENS_OFFICE))
    assert await processor.process(on_kriens) is Outcome.DEAD_LETTERED
    letter = await _row(pool, "SELECT error_class FROM dead_letters WHERE event_id = $1", unsigned.event_id)
    assert letter == {"error_class": "ForeignIngressTopic"}
    assert await processor.process(unsigned.record(2)) is Outcome.PROCESSED  # on its own topic
    assert await _cases(pool, unsigned.envelope.businessprocessid) == 1


async def test_the_shared_ingress_is_read_only_when_switched_on_and_binds_no_topic(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_SHARED_INGRESS", raising=False)
    assert RegistrySettings().shared_ingress is False  # secure by default
    closed = _ingress(pool, hub_settings)
    assert closed.pattern is not None
    assert re.match(closed.pattern, topics.INGRESS) is None  # the registry does not read it
    assert re.match(closed.pattern, topics.ingress_topic(PORTAL)) is not None
    ctx = registry_context(pool, hub_settings)
    created = set(await bootstrap.partner_topics(ctx))
    assert topics.ingress_topic(PORTAL) in created
    assert topics.ingress_topic(KRIENS_OFFICE) in created
    assert topics.INGRESS not in created

    monkeypatch.setenv("HUB_SHARED_INGRESS", "true")  # as an operator switches it on
    shared = hub_settings
    opened = _ingress(pool, shared)
    assert opened.pattern is not None
    assert re.match(opened.pattern, topics.INGRESS) is not None
    assert re.match(opened.pattern, "hub.ingress-dlt") is None
    assert topics.INGRESS in set(await bootstrap.partner_topics(registry_context(pool, shared)))
    # On the shared topic the signature alone proves the sender: any partner may write there.
    report = _move(portal_key)
    assert (
        await ingress_processor(pool, shared).process(report.record(3, topic=topics.INGRESS))
        is Outcome.PROCESSED
    )
    assert await _cases(pool, report.envelope.businessprocessid) == 1
