"""The registry's ingress subscription refuses every attack on signatures and replays.

The real route (``services.registry.bootstrap``) and the consumer's processor run against
PostgreSQL, record by record: each attack is dead-lettered with its reason and recorded,
opens no case, and a valid signed event in the same run still opens its case; the same
signed event sent again is dropped by the inbox.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import KRIENS, DepartureConfirmed, Envelope
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.local.demo import KRIENS_OFFICE, PORTAL, TAX_OFFICE, demo_person, move_report, new_case_id
from hub.runtime import topics
from hub.runtime.consumer import Outcome
from hub.runtime.messages import Incoming
from hub.runtime.settings import HubSettings
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.registry import partner_keys
from tests.fixtures.registry import ingress_processor, registry_unit_of_work
from tests.fixtures.signing import Crafted, craft

pytestmark = pytest.mark.asyncio
REGISTRY = "urn:ch:lu:hub:service:registry"
GROUP = "hub.registry.ingress"
NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Keys:
    portal: SigningKey
    kriens: SigningKey
    tax: SigningKey
    portal_expired: SigningKey
    portal_not_yet_valid: SigningKey
    portal_revoked: SigningKey


async def _mirror(
    pool: asyncpg.Pool, master: MasterKey, data: PartnerKeyRegistered | PartnerKeyRevoked
) -> None:
    """The registry's handler for identity's announcement, as its consumer would call it."""
    envelope = Envelope.new(data, source="urn:ch:lu:hub:service:identity", business_process_id="partner:x")
    msg: Incoming[Any] = Incoming(envelope, data, topics.IDENTITY_PARTNERS, 0, 0, "0" * 32)
    handler = (
        partner_keys.mirror_key_registered
        if isinstance(data, PartnerKeyRegistered)
        else partner_keys.mirror_key_revoked
    )
    async with pool.acquire() as conn, conn.transaction():
        await handler(msg, registry_unit_of_work(conn, master))


async def _register(
    pool: asyncpg.Pool,
    master: MasterKey,
    partner_id: str,
    key_id: str,
    *,
    valid_from: dt.datetime = NOW - dt.timedelta(days=1),
    valid_until: dt.datetime | None = None,
) -> SigningKey:
    key = SigningKey.generate(key_id)
    await _mirror(
        pool,
        master,
        PartnerKeyRegistered(
            partner_id=partner_id,
            key_id=key_id,
            public_key=key.public.base64,
            valid_from=valid_from,
            valid_until=valid_until,
        ),
    )
    return key


@pytest_asyncio.fixture
async def keys(pool: asyncpg.Pool, master_key: MasterKey) -> Keys:
    revoked = await _register(pool, master_key, PORTAL, "portal-revoked")
    await _mirror(
        pool, master_key, PartnerKeyRevoked(partner_id=PORTAL, key_id="portal-revoked", revoked_at=NOW)
    )
    return Keys(
        portal=await _register(pool, master_key, PORTAL, "portal-2026"),
        kriens=await _register(pool, master_key, KRIENS_OFFICE, "kriens-2026"),
        tax=await _register(pool, master_key, TAX_OFFICE, "tax-2026"),
        portal_expired=await _register(
            pool, master_key, PORTAL, "portal-2024", valid_from=NOW - dt.timedelta(days=400), valid_until=NOW
        ),
        portal_not_yet_valid=await _register(
            pool, master_key, PORTAL, "portal-2027", valid_from=NOW + dt.timedelta(days=30)
        ),
        portal_revoked=revoked,
    )


def _move(key: SigningKey | None, *, partner: str = PORTAL, **options: Any) -> Crafted:
    return craft(move_report(demo_person(3)), partner_id=partner, case_id=new_case_id(), key=key, **options)


Attack = Callable[[Keys], Crafted]
# name -> (how the attacker builds the record, the error class, a part of the reason)
ATTACKS: dict[str, tuple[Attack, str, str]] = {
    "unsigned": (lambda k: _move(None), "UnsignedEvent", "is not signed"),
    "forged": (
        lambda k: _move(SigningKey.generate(k.portal.key_id)),  # the portal's key id, another key
        "BadSignature",
        "does not verify with key portal-2026: forged, or changed after signing",
    ),
    "tampered-value": (
        lambda k: (m := _move(k.portal)).with_value(
            m.value.replace(b"Hertensteinstrasse", b"Bahnhofstrasse")
        ),
        "BadSignature",
        "forged, or changed after signing",
    ),
    "tampered-attribute": (
        lambda k: _move(k.portal).with_header("ce_businessprocessid", new_case_id()),
        "BadSignature",
        "forged, or changed after signing",
    ),
    "unknown-key": (
        lambda k: _move(SigningKey.generate("portal-never-registered")),
        "UnknownSigningKey",
        "names unknown key portal-never-registered",
    ),
    "another-partners-key": (
        lambda k: _move(k.kriens),  # Kriens signs as the portal
        "ForeignSigningKey",
        f"key kriens-2026 belongs to {KRIENS_OFFICE}, not to the sender {PORTAL}",
    ),
    "expired-key": (lambda k: _move(k.portal_expired), "KeyOutsideValidity", "key portal-2024 of"),
    "not-yet-valid-key": (
        lambda k: _move(k.portal_not_yet_valid),
        "KeyOutsideValidity",
        "is not valid before",
    ),
    "revoked-key": (lambda k: _move(k.portal_revoked), "RevokedSigningKey", "key portal-revoked of"),
    "replayed-stale-time": (
        lambda k: _move(k.portal, time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7)),
        "StaleEvent",
        "s old; at most 21600s accepted",
    ),
    "future-time": (
        lambda k: _move(k.portal, time=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)),
        "FutureEvent",
        "in the future; at most 300s of clock skew accepted",
    ),
    "wrong-role": (
        lambda k: _move(k.tax, partner=TAX_OFFICE),  # signed correctly, but only portals report moves
        "NotAuthorized",
        f"{TAX_OFFICE} (roles tax-office) may not publish ch.lu.hub.relocation.move-reported.v1",
    ),
}


async def _dead_letters(pool: asyncpg.Pool, event_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT consumer, error_class, error_message, dead_letter_topic FROM dead_letters"
                " WHERE event_id = $1",
                event_id,
            )
        )


async def _cases(pool: asyncpg.Pool, case_id: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id))


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_an_attack_is_dead_lettered_with_its_reason_and_the_run_goes_on(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings, attack: str
) -> None:
    build, error_class, reason = ATTACKS[attack]
    processor = ingress_processor(pool, hub_settings)
    offsets = itertools.count()
    crafted = build(keys)
    assert await processor.process(crafted.record(next(offsets))) is Outcome.DEAD_LETTERED
    [row] = await _dead_letters(pool, crafted.event_id)
    assert (row["consumer"], row["error_class"]) == (GROUP, error_class)
    assert reason in row["error_message"]
    assert row["dead_letter_topic"] == "hub.ingress-dlt"
    assert await _cases(pool, crafted.envelope.businessprocessid) == 0  # never routed
    # The same run goes on: the portal's genuine report opens its case.
    valid = _move(keys.portal)
    assert await processor.process(valid.record(next(offsets))) is Outcome.PROCESSED
    assert await _cases(pool, valid.envelope.businessprocessid) == 1
    assert await _dead_letters(pool, valid.event_id) == []


async def test_a_signed_event_sent_twice_is_processed_once(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings
) -> None:
    processor = ingress_processor(pool, hub_settings)
    report = _move(keys.portal)
    assert await processor.process(report.record(1)) is Outcome.PROCESSED
    assert await processor.process(report.record(2)) is Outcome.DUPLICATE  # a replay, byte for byte
    assert await _cases(pool, report.envelope.businessprocessid) == 1
    assert await _dead_letters(pool, report.event_id) == []
    async with pool.acquire() as conn:
        requests = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND aggregateid = $2",
            topics.IDENTITY_REQUESTS,
            report.envelope.businessprocessid,
        )
    assert requests == 1  # identity was asked once: nothing of the case happened twice


async def test_a_replay_under_a_new_id_breaks_the_signature(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings
) -> None:
    processor = ingress_processor(pool, hub_settings)
    report = _move(keys.portal)
    assert await processor.process(report.record(1)) is Outcome.PROCESSED
    replay = report.with_header("ce_id", "a-fresh-id")
    assert await processor.process(replay.record(2)) is Outcome.DEAD_LETTERED
    [row] = await _dead_letters(pool, "a-fresh-id")
    assert row["error_class"] == "BadSignature"


async def test_a_key_registered_while_running_is_accepted_and_a_revocation_applies_at_once(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings, master_key: MasterKey
) -> None:
    processor = ingress_processor(pool, hub_settings)
    rotated = await _register(pool, master_key, PORTAL, "portal-2026b")  # rotation: two valid keys at once
    first, second = _move(rotated), _move(keys.portal)
    assert await processor.process(first.record(1)) is Outcome.PROCESSED
    assert await processor.process(second.record(2)) is Outcome.PROCESSED
    await _mirror(
        pool, master_key, PartnerKeyRevoked(partner_id=PORTAL, key_id="portal-2026b", revoked_at=NOW)
    )
    after = _move(rotated)
    assert await processor.process(after.record(3)) is Outcome.DEAD_LETTERED
    [row] = await _dead_letters(pool, after.event_id)
    assert row["error_class"] == "RevokedSigningKey"


async def test_with_signatures_optional_an_unsigned_event_passes_but_a_bad_one_does_not(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings
) -> None:
    lenient = hub_settings.model_copy(update={"require_signatures": False})
    processor = ingress_processor(pool, lenient)
    unsigned = _move(None)
    assert await processor.process(unsigned.record(1)) is Outcome.PROCESSED
    forged = _move(SigningKey.generate(keys.portal.key_id))
    assert await processor.process(forged.record(2)) is Outcome.DEAD_LETTERED
    stale = _move(None, time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7))
    assert await processor.process(stale.record(3)) is Outcome.DEAD_LETTERED  # the window still holds


async def test_a_milestone_of_an_unknown_case_is_checked_for_its_signature_first(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings
) -> None:
    """The signature is checked before the case is looked up: a forger learns nothing of cases."""
    processor = ingress_processor(pool, hub_settings)
    confirmed = DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date.today())
    forged = craft(confirmed, partner_id=KRIENS_OFFICE, case_id=new_case_id(), key=keys.portal)
    assert await processor.process(forged.record(1)) is Outcome.DEAD_LETTERED
    [row] = await _dead_letters(pool, forged.event_id)
    assert row["error_class"] == "ForeignSigningKey"


def _as_written_by_hand(crafted: Crafted, key: SigningKey, time: str) -> Crafted:
    """``crafted`` as another platform's client writes it: ``ce_time`` in its own format, no
    ``ce_action`` or ``ce_testdelivery`` (the envelope's defaults), then signed over exactly that."""
    left_out = ("ce_time", "ce_action", "ce_testdelivery", "ce_sigkeyid", "ce_signature")
    headers = [(n, v) for n, v in crafted.headers if n not in left_out] + [("ce_time", time.encode())]
    return Crafted(crafted.envelope, tuple(key.sign_headers(headers, crafted.value)), crafted.value)


def _javascript_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


TIME_FORMATS: dict[str, Callable[[dt.datetime], str]] = {
    "javascript-milliseconds": _javascript_time,
    "whole-milliseconds": lambda now: now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    "utc-offset": lambda now: now.isoformat(timespec="seconds"),
    "zurich-offset": lambda now: now.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat(),
    "nanoseconds": lambda now: now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z",
}


@pytest.mark.parametrize("time_format", list(TIME_FORMATS))
async def test_a_partner_signing_its_own_time_format_and_no_defaults_opens_its_case(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings, time_format: str
) -> None:
    processor = ingress_processor(pool, hub_settings)
    written = TIME_FORMATS[time_format](dt.datetime.now(dt.UTC))
    report = _as_written_by_hand(_move(None), keys.portal, written)
    assert dict(report.headers)["ce_time"] == written.encode()
    assert await processor.process(report.record(1)) is Outcome.PROCESSED
    assert await _cases(pool, report.envelope.businessprocessid) == 1
    assert await _dead_letters(pool, report.event_id) == []


async def test_a_time_rewritten_after_signing_breaks_the_signature(
    pool: asyncpg.Pool, keys: Keys, hub_settings: HubSettings
) -> None:
    """Signed as ``….123Z``, sent as the same instant written ``….123000Z``: not what was signed."""
    processor = ingress_processor(pool, hub_settings)
    now = dt.datetime.now(dt.UTC).replace(microsecond=123000)
    report = _as_written_by_hand(_move(None), keys.portal, _javascript_time(now))
    rewritten = report.with_header("ce_time", now.isoformat().replace("+00:00", "Z"))
    assert dict(rewritten.headers)["ce_time"].endswith(b".123000Z")
    assert await processor.process(rewritten.record(1)) is Outcome.DEAD_LETTERED
    [row] = await _dead_letters(pool, rewritten.event_id)
    assert row["error_class"] == "BadSignature"
    assert await _cases(pool, rewritten.envelope.businessprocessid) == 0
