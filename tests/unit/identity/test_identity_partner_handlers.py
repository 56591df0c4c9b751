"""The partner register: admin commands in, partner events out, on the in-memory stores."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from contracts import Jurisdiction, Sector
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.runtime import topics
from services.identity import handlers_admin
from services.identity.adapters.memory import MemoryRepositories, MemoryStore
from services.identity.errors import NotAuthorized, UnknownPartner
from tests.unit.identity.support import CLI, KRIENS_OFFICE, OPS, handle, incoming, seeded_store

pytestmark = pytest.mark.asyncio
NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"
HORW = {"level": "municipality", "bfs_number": 1058, "canton": "LU"}


def _register(**changes: Any) -> RegisterPartner:
    fields: dict[str, Any] = {
        "partner_id": NEW_PARTNER,
        "name": "Gemeinde Horw, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": HORW,
        "local_person_id_category": "CH.LU.1058",
    }
    return RegisterPartner.model_validate(fields | changes)


@pytest.fixture
def store() -> MemoryStore:
    return seeded_store()


async def test_register_partner_stores_it_and_announces_it_keyed_by_partner(store: MemoryStore) -> None:
    message = incoming(_register(sedex_id="1-1062-1"), source=CLI, case_id=f"partner:{NEW_PARTNER}")
    emitter = await handle(store, handlers_admin.register_partner, message)
    [event] = emitter.emitted
    assert (event.topic, event.key, event.envelope.businessprocessid) == (
        topics.IDENTITY_PARTNERS,
        NEW_PARTNER,
        f"partner:{NEW_PARTNER}",
    )
    assert event.envelope.referenceid == message.envelope.id
    assert event.data == PartnerRegistered(
        partner_id=NEW_PARTNER,
        name="Gemeinde Horw, Einwohnerdienste",
        sector=Sector.RESIDENT_REGISTRATION,
        roles=("municipality",),
        jurisdiction=Jurisdiction.model_validate(HORW),
        sedex_id="1-1062-1",
        local_person_id_category="CH.LU.1058",
        status="active",
    )
    stored = await MemoryRepositories(store).partners.get(NEW_PARTNER)
    assert stored is not None
    assert (stored.status, stored.announced, stored.jurisdiction) == ("active", True, event.data.jurisdiction)


async def test_registering_again_updates_the_partner_and_announces_it_again(store: MemoryStore) -> None:
    await handle(store, handlers_admin.register_partner, incoming(_register(), source=CLI))
    renamed = _register(
        name="Gemeinde Horw",
        roles=("municipality", "portal"),
        jurisdiction={"level": "canton", "canton": "LU"},
    )
    emitter = await handle(store, handlers_admin.register_partner, incoming(renamed, source=CLI))
    [event] = emitter.of_type(PartnerRegistered)
    assert (event.name, event.jurisdiction.level) == ("Gemeinde Horw", "canton")
    stored = await MemoryRepositories(store).partners.get(NEW_PARTNER)
    assert stored is not None
    assert (stored.name, stored.roles) == ("Gemeinde Horw", ("municipality", "portal"))


async def test_suspending_and_activating_announce_the_status_changes(store: MemoryStore) -> None:
    suspend = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="suspended", reason="audit")
    suspended = await handle(store, handlers_admin.change_partner_status, incoming(suspend, source=CLI))
    assert store.state.partners[KRIENS_OFFICE].partner.status == "suspended"
    activate = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="active")
    activated = await handle(store, handlers_admin.change_partner_status, incoming(activate, source=CLI))
    changes = [*suspended.emitted, *activated.emitted]
    assert [(e.key, e.topic) for e in changes] == [(KRIENS_OFFICE, topics.IDENTITY_PARTNERS)] * 2
    assert [e.data for e in changes] == [
        PartnerStatusChanged(partner_id=KRIENS_OFFICE, status="suspended", reason="audit"),
        PartnerStatusChanged(partner_id=KRIENS_OFFICE, status="active", reason=None),
    ]
    assert store.state.partners[KRIENS_OFFICE].partner.status == "active"
    assert store.state.partners[KRIENS_OFFICE].status_reason is None


async def test_a_re_registered_suspended_partner_stays_suspended(store: MemoryStore) -> None:
    await handle(store, handlers_admin.register_partner, incoming(_register(), source=CLI))
    suspend = ChangePartnerStatus(partner_id=NEW_PARTNER, status="suspended")
    await handle(store, handlers_admin.change_partner_status, incoming(suspend, source=CLI))
    emitter = await handle(store, handlers_admin.register_partner, incoming(_register(), source=CLI))
    [event] = emitter.of_type(PartnerRegistered)
    assert event.status == "suspended"


async def test_a_status_change_of_an_unknown_partner_is_refused(store: MemoryStore) -> None:
    command = ChangePartnerStatus(partner_id=NEW_PARTNER, status="suspended")
    with pytest.raises(UnknownPartner, match="no partner"):
        await handle(store, handlers_admin.change_partner_status, incoming(command, source=CLI))
    assert NEW_PARTNER not in store.state.partners


async def test_a_partner_not_yet_announced_is_announced_before_its_first_status_change(
    store: MemoryStore,
) -> None:
    kriens = store.state.partners[KRIENS_OFFICE]
    store.put_partner(kriens.partner, announced=False)  # seeded, the announcer not there yet
    suspend = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="suspended")
    emitter = await handle(store, handlers_admin.change_partner_status, incoming(suspend, source=CLI))
    assert [(type(e.data), e.key) for e in emitter.emitted] == [
        (PartnerRegistered, KRIENS_OFFICE),
        (PartnerStatusChanged, KRIENS_OFFICE),
    ]
    registered, _ = emitter.emitted
    assert isinstance(registered.data, PartnerRegistered)
    assert registered.data.status == "active"  # as it stood before the change
    assert store.state.partners[KRIENS_OFFICE].announced_at is not None


async def test_only_the_cli_or_an_active_operations_partner_may_administer(store: MemoryStore) -> None:
    municipality = f"urn:ch:lu:hub:partner:{KRIENS_OFFICE}"
    for source in (municipality, "urn:somewhere", "urn:ch:lu:hub:partner:CH/MUN/9999/unknown"):
        with pytest.raises(NotAuthorized, match="may not administer partners"):
            await handle(store, handlers_admin.register_partner, incoming(_register(), source=source))
    assert NEW_PARTNER not in store.state.partners
    await handle(
        store, handlers_admin.register_partner, incoming(_register(), source=f"urn:ch:lu:hub:partner:{OPS}")
    )
    assert NEW_PARTNER in store.state.partners


async def test_a_suspended_operations_partner_may_not_administer(store: MemoryStore) -> None:
    ops = store.state.partners[OPS]
    ops.partner = dataclasses.replace(ops.partner, status="suspended")
    with pytest.raises(NotAuthorized):
        await handle(
            store,
            handlers_admin.register_partner,
            incoming(_register(), source=f"urn:ch:lu:hub:partner:{OPS}"),
        )
