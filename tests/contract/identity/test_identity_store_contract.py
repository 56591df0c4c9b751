"""One suite, two adapters: the in-memory stores of identity may not drift from PostgreSQL's.

Every test works through the ports (``services.identity.ports``) and the erasure port;
what only an adapter can do (destroy keys as the vault does, erase a case, read what was
emitted, lose the database) is an abstract hook each subclass supplies.
"""

from __future__ import annotations

import abc
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import Jurisdiction, LocalPersonId, Sector
from contracts.admin import RegisterPartner
from contracts.identity import PartnerStatusChanged
from hub.errors import DatabaseUnavailable, PermanentError, TransientError
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from hub.vault import store as vault_store
from hub.vault.crypto import Erased, MasterKey, case_ref
from services.erasure import StoreReport
from services.identity.adapters.memory import MemoryIdentityErasure, MemoryStore, MemoryUnitsOfWork
from services.identity.adapters.postgres import IdentityErasure, PostgresUnitsOfWork
from services.identity.domain import CITIZEN_SECTOR, PseudonymBasis
from services.identity.ports import ErasureSubject, LocatingErasure, UnitsOfWork
from tests.integration.identity.support import migrated_pool
from tests.unit.identity.support import IDENTITY, person

pytestmark = pytest.mark.asyncio

HORW = "CH/MUN/1058/einwohnerdienste"
MEGGEN = "CH/MUN/1063/einwohnerdienste"
KRIENS_ID = LocalPersonId(category="CH.LU.1059", id="K-1")
SEED = bytes(range(32))


def register(partner_id: str = HORW, **changes: object) -> RegisterPartner:
    fields: dict[str, object] = {
        "partner_id": partner_id,
        "name": "Gemeinde Horw, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": {"level": "municipality", "bfs_number": 1058, "canton": "LU"},
        "local_person_id_category": "CH.LU.1058",
    }
    return RegisterPartner.model_validate(fields | changes)


class IdentityStoreContract(abc.ABC):
    """What every adapter of the identity ports promises handlers, workers and commands."""

    @abc.abstractmethod
    def erasure(self) -> LocatingErasure:
        """The service's erasure port, as the erasing command gets it."""

    @abc.abstractmethod
    async def destroy_keys(self, subject: ErasureSubject) -> None:
        """The vault's part of an erasure: the keys of whom ``locate`` found are destroyed."""

    @abc.abstractmethod
    async def erase_case(self, case_id: str) -> None:
        """Destroy the data key of the case's person, as ``hub person erase`` does."""

    @abc.abstractmethod
    async def emitted_types(self) -> list[str]:
        """The event types committed units of work emitted, in order."""

    @abc.abstractmethod
    async def lose_the_database(self) -> None:
        """From now on, every unit of work finds its store unreachable."""

    async def erase(
        self, *, vn: str | None = None, citizen_id: str | None = None
    ) -> tuple[ErasureSubject, list[StoreReport]]:
        """As ``hub person erase`` does it: locate, destroy the keys, forget."""
        erasure = self.erasure()
        subject = await erasure.locate(vn=vn, citizen_id=citizen_id)
        await self.destroy_keys(subject)
        reports = await erasure.erase(case_ids=[], citizen_ids=subject.citizen_ids)
        return subject, reports

    async def add_person(self, units: UnitsOfWork, serial: int = 1, **changes: Any) -> uuid.UUID:
        someone = person(serial, **changes)
        async with units.begin() as uow:
            person_id = await uow.persons.add(someone, pseudonym_seed=SEED)
            if someone.local_person_id is not None:
                await uow.persons.link_local_id(person_id, someone.local_person_id)
        return person_id

    # Persons.

    async def test_a_person_is_found_by_ahvn13_and_read_back_without_local_id_or_seed(
        self, units: UnitsOfWork
    ) -> None:
        person_id = await self.add_person(units, local_id=KRIENS_ID)
        async with units.begin() as uow:
            assert await uow.persons.by_vn(person(1).vn) == person_id
            assert await uow.persons.by_vn(person(2).vn) is None
            assert await uow.persons.record(person_id) == person(1)
            assert await uow.persons.pseudonym_basis(person_id) == PseudonymBasis(person(1).vn, SEED)

    async def test_an_unknown_person_has_no_record_and_no_basis(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert await uow.persons.record(uuid.uuid4()) is None
            with pytest.raises(PermanentError):
                await uow.persons.pseudonym_basis(uuid.uuid4())

    async def test_persons_born_on_a_day_come_with_their_names_oldest_first(self, units: UnitsOfWork) -> None:
        anna = await self.add_person(units, 1)
        beat = await self.add_person(units, 2, first_name="Beat", official_name="Bucher")
        await self.add_person(units, 3, date_of_birth=dt.date(1990, 4, 18))
        async with units.begin() as uow:
            assert await uow.persons.names_born_on(dt.date(1990, 4, 17)) == [
                (anna, "Muster", "Anna"),
                (beat, "Bucher", "Beat"),
            ]
            assert await uow.persons.names_born_on(dt.date(1990, 4, 16)) == []

    async def test_a_local_id_finds_its_person_and_keeps_its_first_link(self, units: UnitsOfWork) -> None:
        anna = await self.add_person(units, 1, local_id=KRIENS_ID)
        beat = await self.add_person(units, 2, local_id=KRIENS_ID)  # the same register id again
        async with units.begin() as uow:
            assert await uow.persons.by_local_id(KRIENS_ID) == anna
            assert await uow.persons.by_local_id(LocalPersonId(category="CH.LU.1061", id="K-1")) is None
            assert await uow.persons.local_ids_of(anna) == [KRIENS_ID]
            assert await uow.persons.local_ids_of(beat) == []

    async def test_local_ids_come_newest_link_first_and_one_units_links_by_id(
        self, units: UnitsOfWork
    ) -> None:
        anna = await self.add_person(units)
        ids = [LocalPersonId(category="CH.LU.1061", id=value) for value in ("L-2", "L-1", "L-9")]
        async with units.begin() as uow:
            await uow.persons.link_local_id(anna, ids[0])
            await uow.persons.link_local_id(anna, ids[1])
        async with units.begin() as uow:
            await uow.persons.link_local_id(anna, ids[2])
        async with units.begin() as uow:
            assert await uow.persons.local_ids_of(anna) == [ids[2], ids[1], ids[0]]

    async def test_a_case_is_erased_once_its_key_is_destroyed(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            assert not await uow.persons.case_erased("eumzug-1")
        await self.erase_case("eumzug-1")
        async with units.begin() as uow:
            assert await uow.persons.case_erased("eumzug-1")
            assert not await uow.persons.case_erased("eumzug-2")

    # Erasure.

    async def test_an_erased_person_is_found_by_nothing_and_reads_as_erased(self, units: UnitsOfWork) -> None:
        anna = await self.add_person(units, local_id=KRIENS_ID)
        async with units.begin() as uow:
            await uow.pseudonyms.record(anna, CITIZEN_SECTOR, "citizen-services:anna", 1)
            await uow.pseudonyms.record(anna, "tax", "tax:anna", 1)
        subject, reports = await self.erase(vn=person(1).vn)
        assert subject.person_ids == {anna}
        assert subject.citizen_ids == {"citizen-services:anna"}
        assert len(subject.key_ids) == 1
        assert subject.refs  # the subject reference and the citizen id's
        assert reports == [
            StoreReport("identity.persons", "record unreadable, lookups and local ids deleted", 1)
        ]
        async with units.begin() as uow:
            assert await uow.persons.by_vn(person(1).vn) is None
            assert await uow.persons.by_local_id(KRIENS_ID) is None
            assert await uow.persons.names_born_on(person(1).date_of_birth) == []
            assert isinstance(await uow.persons.record(anna), Erased)
            assert await uow.persons.local_ids_of(anna) == []
            with pytest.raises(TransientError, match="erased"):
                await uow.persons.pseudonym_basis(anna)
            await uow.persons.link_local_id(anna, KRIENS_ID)  # nothing is added to an erased person
            assert await uow.persons.local_ids_of(anna) == []
            # The pseudonyms stay: partners and the audit log refer to them.
            assert await uow.pseudonyms.issued(anna, "tax") == "tax:anna"

    async def test_a_person_is_erased_by_citizen_id_and_then_not_found_by_it_again(
        self, units: UnitsOfWork
    ) -> None:
        anna = await self.add_person(units)
        async with units.begin() as uow:
            await uow.pseudonyms.record(anna, CITIZEN_SECTOR, "citizen-services:anna", 1)
        subject, _ = await self.erase(citizen_id="citizen-services:anna")
        assert subject.person_ids == {anna}
        again = await self.erasure().locate(vn=None, citizen_id="citizen-services:anna")
        assert again.person_ids == frozenset()
        assert again.key_ids == ()

    async def test_locating_an_unknown_ahvn13_finds_nobody_but_still_names_its_subject(
        self, units: UnitsOfWork
    ) -> None:
        erasure = self.erasure()
        subject = await erasure.locate(vn=person(5).vn, citizen_id=None)
        assert (subject.person_ids, subject.citizen_ids, subject.key_ids) == (frozenset(), frozenset(), ())
        assert len(subject.refs) == 1  # data another service keyed by the AHVN13 is still reached
        assert await erasure.citizen_ids_of_cases(["eumzug-1"]) == set()  # identity keeps no cases

    # Match reviews.

    async def test_a_review_is_kept_once_per_pair(self, units: UnitsOfWork) -> None:
        anna, beat = await self.add_person(units, 1), await self.add_person(units, 2)
        for _ in range(2):
            async with units.begin() as uow:
                await uow.reviews.add(
                    new_person_id=beat,
                    candidate_person_id=anna,
                    reason="look-alike",
                    business_process_id="e-1",
                )
        async with units.begin() as uow:
            [review] = await uow.reviews.open()
        assert set(review) == {
            "id",
            "new_person_id",
            "candidate_person_id",
            "reason",
            "business_process_id",
            "created_at",
        }
        assert (review["new_person_id"], review["candidate_person_id"], review["reason"]) == (
            beat,
            anna,
            "look-alike",
        )
        assert review["business_process_id"] == "e-1"

    # Sector keys and pseudonyms.

    async def test_a_sector_starts_at_key_version_one_and_rotates_on_its_own(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            assert await uow.pseudonyms.current_version("tax") == 1
            assert await uow.pseudonyms.rotate("tax") == 2
        async with units.begin() as uow:
            assert await uow.pseudonyms.rotate("tax") == 3
            assert await uow.pseudonyms.current_version("tax") == 3
            assert await uow.pseudonyms.current_version("building") == 1
            assert await uow.pseudonyms.rotate("building") == 2

    async def test_a_pairs_first_pseudonym_stays(self, units: UnitsOfWork) -> None:
        anna = await self.add_person(units)
        async with units.begin() as uow:
            assert await uow.pseudonyms.issued(anna, "tax") is None
            assert await uow.pseudonyms.record(anna, "tax", "tax:first", 1) == "tax:first"
        async with units.begin() as uow:
            assert await uow.pseudonyms.record(anna, "tax", "tax:second", 2) == "tax:first"
            assert await uow.pseudonyms.issued(anna, "tax") == "tax:first"
            assert await uow.pseudonyms.issued(anna, "building") is None

    # Partners.

    async def test_a_new_partner_is_active_and_not_yet_announced(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            stored = await uow.partners.upsert(register(sedex_id="1-1058-1"))
        assert (stored.partner_id, stored.sector, stored.roles) == (
            HORW,
            "resident-registration",
            ("municipality",),
        )
        assert (stored.status, stored.announced, stored.active) == ("active", False, True)
        assert (stored.sedex_id, stored.local_person_id_category) == ("1-1058-1", "CH.LU.1058")
        assert stored.jurisdiction == Jurisdiction(level="municipality", bfs_number=1058, canton="LU")
        async with units.begin() as uow:
            assert await uow.partners.get(HORW, for_update=True) == stored
            assert await uow.partners.get_many([HORW, "CH/MUN/9999/nobody"]) == {HORW: stored}
            assert await uow.partners.get("CH/MUN/9999/nobody") is None

    async def test_registering_again_changes_the_description_but_not_status_or_announcement(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.partners.upsert(register())
            await uow.partners.mark_announced(HORW)
            await uow.partners.set_status(HORW, "suspended", "audit")
        async with units.begin() as uow:
            again = await uow.partners.upsert(
                register(
                    name="Horw",
                    roles=("municipality", "portal"),
                    jurisdiction={"level": "canton", "canton": "LU"},
                )
            )
        assert (again.name, again.roles, again.status, again.announced) == (
            "Horw",
            ("municipality", "portal"),
            "suspended",
            True,
        )
        assert again.jurisdiction == Jurisdiction(level="canton", canton="LU")

    async def test_a_status_change_returns_the_partner_and_an_unknown_one_none(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.partners.upsert(register())
            suspended = await uow.partners.set_status(HORW, "suspended", "audit")
            assert await uow.partners.set_status("CH/MUN/9999/nobody", "suspended", None) is None
        assert suspended is not None
        assert (suspended.status, suspended.active) == ("suspended", False)

    async def test_unannounced_partners_are_claimed_by_id_up_to_the_limit(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:  # what the register holds already is announced
            for partner in await uow.partners.claim_unannounced(1000):
                await uow.partners.mark_announced(partner.partner_id)
            await uow.partners.upsert(register(MEGGEN))
            await uow.partners.upsert(register(HORW))
        async with units.begin() as uow:
            assert [p.partner_id for p in await uow.partners.claim_unannounced(1)] == [HORW]
            await uow.partners.mark_announced(HORW)
        async with units.begin() as uow:
            assert [p.partner_id for p in await uow.partners.claim_unannounced(10)] == [MEGGEN]
            stored = await uow.partners.get(HORW)
        assert stored is not None
        assert stored.announced

    async def test_the_listing_shows_each_partner_with_its_parts_and_jurisdiction(
        self, units: UnitsOfWork
    ) -> None:
        async with units.begin() as uow:
            await uow.partners.upsert(register())
            await uow.partners.set_status(HORW, "suspended", "audit")
        async with units.begin() as uow:
            rows = await uow.partners.listing()
        assert [row["partner_id"] for row in rows] == sorted(row["partner_id"] for row in rows)
        [horw] = [row for row in rows if row["partner_id"] == HORW]
        assert set(horw) == {
            "partner_id",
            "instance",
            "member_class",
            "member_code",
            "subsystem",
            "name",
            "sector",
            "roles",
            "sedex_id",
            "local_person_id_category",
            "status",
            "status_reason",
            "registered_at",
            "updated_at",
            "announced_at",
            "jurisdiction",
        }
        assert (horw["instance"], horw["member_class"], horw["member_code"], horw["subsystem"]) == (
            "CH",
            "MUN",
            "1058",
            "einwohnerdienste",
        )
        assert (horw["roles"], horw["status"], horw["status_reason"], horw["announced_at"]) == (
            ["municipality"],
            "suspended",
            "audit",
            None,
        )
        assert horw["jurisdiction"] == {"level": "municipality", "bfs_number": 1058, "canton": "LU"}

    # Partner keys.

    async def test_a_key_is_stored_found_by_its_public_half_and_its_window_changed(
        self, units: UnitsOfWork
    ) -> None:
        start, end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
        async with units.begin() as uow:
            await uow.partners.upsert(register())
            stored = await uow.partner_keys.upsert(
                key_id="horw-a",
                partner_id=HORW,
                algorithm="ed25519",
                public_key="AAAA",
                valid_from=start,
                valid_until=None,
            )
        assert (stored.key_id, stored.partner_id, stored.valid_from, stored.valid_until) == (
            "horw-a",
            HORW,
            start,
            None,
        )
        assert (stored.revoked_at, stored.revocation_reason) == (None, None)
        async with units.begin() as uow:
            assert await uow.partner_keys.get("horw-a", for_update=True) == stored
            assert await uow.partner_keys.key_id_of("AAAA") == "horw-a"
            assert await uow.partner_keys.key_id_of("BBBB") is None
            assert await uow.partner_keys.get("horw-b") is None
            changed = await uow.partner_keys.upsert(
                key_id="horw-a",
                partner_id=HORW,
                algorithm="ed25519",
                public_key="AAAA",
                valid_from=start,
                valid_until=end,
            )
        assert (changed.valid_from, changed.valid_until) == (start, end)

    async def test_a_revoked_key_says_when_and_why(self, units: UnitsOfWork) -> None:
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        async with units.begin() as uow:
            await uow.partners.upsert(register())
            await uow.partner_keys.upsert(
                key_id="horw-a",
                partner_id=HORW,
                algorithm="ed25519",
                public_key="AAAA",
                valid_from=start,
                valid_until=None,
            )
        before = dt.datetime.now(dt.UTC)
        async with units.begin() as uow:
            revoked = await uow.partner_keys.revoke("horw-a", "leaked")
        assert revoked.revocation_reason == "leaked"
        assert revoked.revoked_at is not None
        assert revoked.revoked_at >= before - dt.timedelta(seconds=1)
        async with units.begin() as uow:
            assert await uow.partner_keys.get("horw-a") == revoked

    async def test_the_key_listing_is_by_partner_start_and_id_and_may_name_a_partner(
        self, units: UnitsOfWork
    ) -> None:
        early, late = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        async with units.begin() as uow:
            await uow.partners.upsert(register(HORW))
            await uow.partners.upsert(register(MEGGEN))
            for key_id, partner_id, public, start in (
                ("m-1", MEGGEN, "M1", early),
                ("h-2", HORW, "H2", late),
                ("h-1", HORW, "H1", late),
                ("h-0", HORW, "H0", early),
            ):
                await uow.partner_keys.upsert(
                    key_id=key_id,
                    partner_id=partner_id,
                    algorithm="ed25519",
                    public_key=public,
                    valid_from=start,
                    valid_until=None,
                )
        async with units.begin() as uow:
            every = await uow.partner_keys.listing()
            horw = await uow.partner_keys.listing(HORW)
        assert [row["key_id"] for row in every] == ["h-0", "h-1", "h-2", "m-1"]
        assert [row["key_id"] for row in horw] == ["h-0", "h-1", "h-2"]
        assert set(every[0]) == {
            "key_id",
            "partner_id",
            "algorithm",
            "public_key",
            "valid_from",
            "valid_until",
            "revoked_at",
            "revocation_reason",
            "registered_at",
            "updated_at",
        }

    # Units of work.

    async def test_a_unit_of_work_that_fails_leaves_nothing_and_emits_nothing(
        self, units: UnitsOfWork
    ) -> None:
        async def fail() -> None:
            async with units.begin() as uow:
                await uow.partners.upsert(register())
                await uow.emitter.emit(
                    PartnerStatusChanged(partner_id=HORW, status="active"),
                    topic=topics.IDENTITY_PARTNERS,
                    business_process_id=f"partner:{HORW}",
                )
                raise RuntimeError("the handler fails")

        with pytest.raises(RuntimeError):
            await fail()
        async with units.begin() as uow:
            assert await uow.partners.get(HORW) is None
        assert await self.emitted_types() == []

    async def test_a_committed_unit_of_work_emits_its_events(self, units: UnitsOfWork) -> None:
        async with units.begin() as uow:
            await uow.emitter.emit(
                PartnerStatusChanged(partner_id=HORW, status="active"),
                topic=topics.IDENTITY_PARTNERS,
                business_process_id=f"partner:{HORW}",
            )
        assert await self.emitted_types() == [PartnerStatusChanged.event_type]

    async def test_a_store_out_of_reach_is_database_unavailable(self, units: UnitsOfWork) -> None:
        await self.lose_the_database()
        with pytest.raises(DatabaseUnavailable):
            async with units.begin():
                pass


class TestMemoryIdentityStore(IdentityStoreContract):
    @pytest.fixture
    def units(self) -> UnitsOfWork:
        self.store = MemoryStore()
        self.emitter = RecordingEmitter(source=IDENTITY)
        self.erasure_port = MemoryIdentityErasure(self.store)
        return MemoryUnitsOfWork(self.store, self.emitter)

    def erasure(self) -> LocatingErasure:
        return self.erasure_port

    async def destroy_keys(self, subject: ErasureSubject) -> None:
        self.store.destroy_keys(subject.key_ids)

    async def erase_case(self, case_id: str) -> None:
        self.store.erase_case(case_id)

    async def emitted_types(self) -> list[str]:
        return [e.envelope.type for e in self.emitter.emitted]

    async def lose_the_database(self) -> None:
        self.store.unavailable = True


class TestPostgresIdentityStore(IdentityStoreContract):
    @pytest_asyncio.fixture
    async def units(self, database_url: str, vault_master_key: MasterKey) -> AsyncIterator[UnitsOfWork]:
        self.pool = await migrated_pool(database_url)
        self.master = vault_master_key
        # The erasing command's connection: outside the units' transactions, as the command runs.
        self.conn: asyncpg.Connection | None = await self.pool.acquire()
        self.erasure_port = IdentityErasure(self.conn, vault_master_key)
        yield PostgresUnitsOfWork(self.pool, master=vault_master_key, source=IDENTITY)
        if self.conn is not None:
            await self.pool.release(self.conn)
        await self.pool.close()  # nothing if the test closed it

    def erasure(self) -> LocatingErasure:
        return self.erasure_port

    async def destroy_keys(self, subject: ErasureSubject) -> None:
        assert self.conn is not None
        await vault_store.destroy(self.conn, refs=subject.refs, key_ids=subject.key_ids)

    async def erase_case(self, case_id: str) -> None:
        async with self.pool.acquire() as conn:
            await vault_store.key_for(conn, self.master, case_ref(case_id))
            await vault_store.destroy(conn, refs=[case_ref(case_id)])

    async def emitted_types(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return [row["type"] for row in await conn.fetch("SELECT type FROM outbox ORDER BY seq")]

    async def lose_the_database(self) -> None:
        assert self.conn is not None
        await self.pool.release(self.conn)
        self.conn = None
        await self.pool.close()
