"""Subscriptions, the partner mirror and partners' keys, in memory.

``admin.set_subscription`` applies a command only if a trusted operator or an active
operations partner provably sent it, and only for a slot its case type has;
``admin.mirror_partner`` / ``mirror_partner_status`` follow identity's register and let a
partner that fits take the open cases' unfilled slots; ``partner_keys.mirror_key_*``
follow its keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

import pytest

from contracts import ZUG, Envelope, Jurisdiction, Sector, SetSubscription
from contracts.catalog import serialize_data
from contracts.identity import (
    PartnerKeyRegistered,
    PartnerKeyRevoked,
    PartnerRegistered,
    PartnerStatusChanged,
)
from hub.runtime import topics
from hub.runtime.messages import Incoming
from hub.security.operator_keys import ADMIN_CLI_SOURCE, CommandPolicy
from hub.security.signing import BadSignature, SigningKey, UnknownSigningKey, UnsignedEvent
from services.registry import admin, handlers, partner_keys
from services.registry.adapters.memory import MemoryRegistry
from services.registry.errors import NotAuthorized, UnknownSlot
from services.registry.model import Partner, PartnerKey
from services.registry.subscriptions_domain import ALL_CASES
from tests.unit.registry.support import (
    MOVE,
    OPERATIONS,
    OPS_EMAIL,
    PORTAL,
    PROCESSES,
    SIGNED,
    TAX_OFFICE,
    UNSIGNED,
    case_of,
    handle,
    incoming,
    mirrored_key,
    moved,
    registry,
    timeline_of,
    uow_of,
)

pytestmark = pytest.mark.asyncio

OPERATOR = SigningKey.generate("operator-0123456789abcdef")
OPERATORS = CommandPolicy(
    trusted=lambda: {OPERATOR.key_id: OPERATOR.public},
    require_signatures=True,
    max_age_s=300,
    max_future_skew_s=30,
)
ZUG_OFFICE = "CH/MUN/1711/einwohnerdienste"


def command(**changes: Any) -> SetSubscription:
    fields: dict[str, Any] = {
        "partner_id": TAX_OFFICE.partner_id,
        "subscribed_event_type": MOVE,
        "case_type": "relocation",
        "purpose": "assign the tax domicile",
        "legal_basis": "StHG Art. 4",
        "fields": ("move_date", "arrival"),
        "retention_days": 30,
        "status": "approved",
        "slot": "arrival-tax-office",
    }
    return SetSubscription(**(fields | changes))


def from_operator(data: SetSubscription, key: SigningKey | None = OPERATOR) -> Incoming[Any]:
    envelope = Envelope.new(data, source=ADMIN_CLI_SOURCE, business_process_id="admin:subscriptions")
    value = serialize_data(data)
    headers = envelope.to_headers() if key is None else key.sign_headers(envelope.to_headers(), value)
    return Incoming(
        Envelope.from_headers(headers), data, topics.ADMIN, 0, 0, "0" * 32, value, None, tuple(headers)
    )


def set_subscription(policy: Any = SIGNED) -> Any:
    return functools.partial(
        admin.set_subscription, operators=OPERATORS, partners=policy, processes=PROCESSES
    )


async def subscribed(memory: MemoryRegistry) -> dict[tuple[str, str | None], Any]:
    found = await uow_of(memory).subscriptions.to(MOVE, "relocation")
    return {(s.subscription.partner_id, s.subscription.slot): s.subscription for s in found}


async def test_an_operators_signed_command_sets_a_subscription_for_one_slot() -> None:
    memory = registry()
    run = await handle(memory, set_subscription(), from_operator(command()))
    assert run.emitted == []
    mine = (await subscribed(memory))[(TAX_OFFICE.partner_id, "arrival-tax-office")]
    assert (mine.purpose, mine.legal_basis, mine.fields) == (
        "assign the tax domicile",
        "StHG Art. 4",
        ("move_date", "arrival"),
    )
    # Another command for the same slot replaces it.
    await handle(memory, set_subscription(), from_operator(command(purpose="changed", scope="party")))
    assert (await subscribed(memory))[(TAX_OFFICE.partner_id, "arrival-tax-office")].purpose == "changed"


@pytest.mark.parametrize(
    ("key", "refusal"),
    [
        (None, UnsignedEvent),
        (SigningKey.generate("operator-fedcba9876543210"), UnknownSigningKey),
        (SigningKey.generate(OPERATOR.key_id), BadSignature),
    ],
)
async def test_a_command_no_trusted_operator_signed_changes_nothing(
    key: SigningKey | None, refusal: type[Exception]
) -> None:
    memory = registry()
    before = await subscribed(memory)
    with pytest.raises(refusal):
        await handle(memory, set_subscription(), from_operator(command(), key))
    assert await subscribed(memory) == before


async def test_a_slot_the_case_type_lacks_is_refused() -> None:
    memory = registry()
    with pytest.raises(UnknownSlot, match="no party slot arrival-office"):
        await handle(memory, set_subscription(), from_operator(command(slot="arrival-office")))
    assert (TAX_OFFICE.partner_id, "arrival-office") not in await subscribed(memory)


async def test_an_operations_partner_sets_subscriptions_with_its_own_key() -> None:
    memory = registry()
    key = SigningKey.generate("ops-2026")
    memory.state.partner_keys[key.key_id] = mirrored_key(OPERATIONS, key)
    data = command(partner_id=OPERATIONS.partner_id, case_type=None, slot=None, scope=ALL_CASES)
    await handle(
        memory, set_subscription(), incoming(data, case_id="admin:subscriptions", partner=OPERATIONS, key=key)
    )
    assert (await subscribed(memory))[(OPERATIONS.partner_id, None)].scope == ALL_CASES


async def test_a_partner_without_the_operations_role_or_suspended_may_not() -> None:
    memory = registry()
    key = SigningKey.generate("portal-2026")
    memory.state.partner_keys[key.key_id] = mirrored_key(PORTAL, key)
    with pytest.raises(NotAuthorized, match="may not change subscriptions"):
        await handle(
            memory, set_subscription(), incoming(command(), case_id="admin:s", partner=PORTAL, key=key)
        )
    memory.state.partners[OPERATIONS.partner_id] = dataclasses.replace(OPERATIONS, status="suspended")
    with pytest.raises(NotAuthorized, match="may not change subscriptions"):
        await handle(
            memory, set_subscription(), incoming(command(), case_id="admin:s", partner=OPERATIONS, key=key)
        )
    msg = incoming(command(), case_id="admin:s", source="urn:ch:lu:hub:service:identity")
    with pytest.raises(NotAuthorized, match="urn:ch:lu:hub:service:identity may not change subscriptions"):
        await handle(memory, set_subscription(UNSIGNED), msg)


# The partner mirror


def registered(partner_id: str = ZUG_OFFICE, **changes: Any) -> PartnerRegistered:
    fields: dict[str, Any] = {
        "partner_id": partner_id,
        "name": "Zug, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": Jurisdiction(level="municipality", bfs_number=1711, canton="ZG"),
        "status": "active",
        "sedex_id": "T1-1711-1",
    }
    return PartnerRegistered(**(fields | changes))


async def mirror(memory: MemoryRegistry, data: Any, created: list[str] | None = None) -> Any:
    async def create_topic(topic: str) -> None:
        (created if created is not None else []).append(topic)

    handler = functools.partial(admin.mirror_partner, create_topic=create_topic)
    if isinstance(data, PartnerStatusChanged):
        handler = admin.mirror_partner_status
    msg = incoming(data, case_id=f"partner:{data.partner_id}", source="urn:ch:lu:hub:service:identity")
    return await handle(memory, handler, msg)


async def open_move_to_zug(memory: MemoryRegistry) -> str:
    on_partner_event = functools.partial(
        handlers.on_partner_event, processes=PROCESSES, policy=UNSIGNED, ops_email=OPS_EMAIL
    )
    await handle(memory, on_partner_event, incoming(moved(arrival=ZUG), case_id="eumzug-zug", partner=PORTAL))
    return "eumzug-zug"


async def test_a_registered_partner_is_mirrored_with_its_topics_created_first() -> None:
    memory = registry()
    created: list[str] = []
    await mirror(memory, registered(), created)
    assert created == [topics.delivery_topic(ZUG_OFFICE), topics.ingress_topic(ZUG_OFFICE)]
    partner = await uow_of(memory).partners.get(ZUG_OFFICE)
    assert partner is not None
    assert (partner.roles, partner.delivery_topic, partner.sedex_id, partner.active) == (
        ("municipality",),
        topics.delivery_topic(ZUG_OFFICE),
        "T1-1711-1",
        True,
    )
    assert partner.jurisdiction == Jurisdiction(level="municipality", bfs_number=1711, canton="ZG")


async def test_a_partner_registered_after_a_case_opened_takes_the_slot_it_fits() -> None:
    memory = registry()
    case_id = await open_move_to_zug(memory)
    await mirror(memory, registered())
    case = await case_of(memory, case_id)
    assert {p.slot: p.partner_id for p in case.parties}["arrival-municipality"] == ZUG_OFFICE
    step = (await timeline_of(memory, case_id))[-1]
    assert (step.event_type, step.event_id) == ("party-filled", f"partner:{ZUG_OFFICE}")
    assert "the opening event is not delivered again" in (step.detail or "")


async def test_a_second_partner_for_the_same_slot_leaves_it_unfilled_and_says_why() -> None:
    memory = registry()
    case_id = await open_move_to_zug(memory)
    # Two active offices for Zug in the mirror (the register is ambiguous); one is announced again.
    second = registered("CH/MUN/1711/zweites-amt", name="Zug, zweites Amt")
    for announced in (registered(), second):
        await uow_of(memory).partners.put(
            Partner(
                announced.partner_id,
                announced.name,
                str(announced.sector),
                announced.roles,
                topics.delivery_topic(announced.partner_id),
                "active",
                announced.jurisdiction,
            )
        )
    await mirror(memory, PartnerStatusChanged(partner_id=ZUG_OFFICE, status="active"))
    [arrival] = [p for p in (await case_of(memory, case_id)).parties if p.slot == "arrival-municipality"]
    assert arrival.partner_id is None
    assert arrival.unfilled_reason is not None
    assert arrival.unfilled_reason.startswith("2 active partners with role municipality")


async def test_a_suspended_partner_reactivated_takes_the_open_slots_it_fits() -> None:
    memory = registry()
    await mirror(memory, registered(status="suspended"))
    case_id = await open_move_to_zug(memory)
    await mirror(memory, PartnerStatusChanged(partner_id=ZUG_OFFICE, status="suspended", reason="audit"))
    assert (await uow_of(memory).partners.get(ZUG_OFFICE)).status == "suspended"  # type: ignore[union-attr]
    assert {p.slot: p.partner_id for p in (await case_of(memory, case_id)).parties}[
        "arrival-municipality"
    ] is None
    await mirror(memory, PartnerStatusChanged(partner_id=ZUG_OFFICE, status="active"))
    assert {p.slot: p.partner_id for p in (await case_of(memory, case_id)).parties}[
        "arrival-municipality"
    ] == ZUG_OFFICE


async def test_a_closed_case_keeps_its_slot_unfilled() -> None:
    memory = registry()
    case_id = await open_move_to_zug(memory)
    await uow_of(memory).cases.set_status(case_id, memory.state.cases[case_id].status.REJECTED)
    await mirror(memory, registered())
    assert {p.slot: p.partner_id for p in (await case_of(memory, case_id)).parties}[
        "arrival-municipality"
    ] is None


# Partners' keys


async def test_a_registered_key_is_mirrored_and_a_revocation_stays() -> None:
    memory = registry()
    key = SigningKey.generate("tax-2026")
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    announced = PartnerKeyRegistered(
        partner_id=TAX_OFFICE.partner_id, key_id=key.key_id, public_key=key.public.base64, valid_from=since
    )
    source = "urn:ch:lu:hub:service:identity"
    await handle(
        memory, partner_keys.mirror_key_registered, incoming(announced, case_id="partner:x", source=source)
    )
    assert await uow_of(memory).partner_keys.find(key.key_id) == PartnerKey(
        key.key_id, TAX_OFFICE.partner_id, key.public.base64, since
    )
    revoked_at = since + dt.timedelta(days=2)
    revoked = PartnerKeyRevoked(partner_id=TAX_OFFICE.partner_id, key_id=key.key_id, revoked_at=revoked_at)
    await handle(
        memory, partner_keys.mirror_key_revoked, incoming(revoked, case_id="partner:x", source=source)
    )
    await handle(
        memory, partner_keys.mirror_key_registered, incoming(announced, case_id="partner:x", source=source)
    )
    mirrored = await uow_of(memory).partner_keys.find(key.key_id)
    assert mirrored is not None
    assert mirrored.revoked_at == revoked_at
