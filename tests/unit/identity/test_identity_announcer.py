"""The announcer: partners never announced (seeded, or written by hand) are announced once."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from contracts.identity import PartnerRegistered
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from services.identity.adapters.memory import MemoryStore, MemoryUnitsOfWork
from services.identity.announcer import PartnerAnnouncer
from tests.unit.identity.support import IDENTITY, KRIENS_OFFICE, OPS, PARTNERS, TAX_OFFICE

pytestmark = pytest.mark.asyncio


def _unannounced_store() -> MemoryStore:
    store = MemoryStore()
    for partner in PARTNERS:
        store.put_partner(partner, announced=False)
    return store


def _announcer(store: MemoryStore, *, batch: int = 100) -> tuple[PartnerAnnouncer, RecordingEmitter]:
    emitter = RecordingEmitter(source=IDENTITY)
    return PartnerAnnouncer(MemoryUnitsOfWork(store, emitter), interval_s=0.01, batch=batch), emitter


async def test_every_partner_never_announced_is_announced_once_keyed_by_partner() -> None:
    store = _unannounced_store()
    announcer, emitter = _announcer(store)
    assert await announcer.announce_pending() == len(PARTNERS)
    assert await announcer.announce_pending() == 0
    assert [e.key for e in emitter.emitted] == sorted(p.partner_id for p in PARTNERS)
    assert {e.topic for e in emitter.emitted} == {topics.IDENTITY_PARTNERS}
    assert {e.envelope.businessprocessid for e in emitter.emitted} == {
        f"partner:{p.partner_id}" for p in PARTNERS
    }
    ops = next(e.data for e in emitter.emitted if e.key == OPS)
    assert isinstance(ops, PartnerRegistered)
    assert (ops.roles, ops.jurisdiction.canton) == (("operations",), "LU")
    assert all(stored.announced_at is not None for stored in store.state.partners.values())


async def test_a_partner_announced_already_is_not_announced_again() -> None:
    store = _unannounced_store()
    store.put_partner(store.state.partners[TAX_OFFICE].partner, announced=True)
    announcer, emitter = _announcer(store)
    await announcer.announce_pending()
    assert TAX_OFFICE not in {e.key for e in emitter.emitted}


async def test_a_partner_the_contract_refuses_stays_unannounced_and_does_not_stop_the_others() -> None:
    store = _unannounced_store()
    kriens = store.state.partners[KRIENS_OFFICE].partner
    store.put_partner(dataclasses.replace(kriens, jurisdiction=None), announced=False)  # written by hand
    announcer, emitter = _announcer(store)
    assert await announcer.announce_pending() == len(PARTNERS) - 1
    assert KRIENS_OFFICE not in {e.key for e in emitter.emitted}
    assert store.state.partners[KRIENS_OFFICE].announced_at is None


async def test_a_pass_announces_one_batch_and_the_worker_goes_on_until_none_is_left() -> None:
    store = _unannounced_store()
    announcer, emitter = _announcer(store, batch=2)
    assert await announcer.announce_pending() == 2
    stop = asyncio.Event()
    worker = asyncio.create_task(announcer.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(worker, 1)
    assert sorted(e.key for e in emitter.emitted) == sorted(p.partner_id for p in PARTNERS)


async def test_the_worker_outlives_a_database_outage_and_announces_once_it_is_back() -> None:
    store = _unannounced_store()
    store.unavailable = True
    announcer, emitter = _announcer(store)
    stop = asyncio.Event()
    worker = asyncio.create_task(announcer.run(stop))
    await asyncio.sleep(0.05)
    assert not worker.done()
    assert emitter.emitted == []
    store.unavailable = False
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(worker, 1)
    assert len(emitter.emitted) == len(PARTNERS)
