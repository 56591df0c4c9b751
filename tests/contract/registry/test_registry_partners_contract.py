"""One suite per partner-side port, two adapters: the registry's mirror of partners and their
keys, the catalogue, subscriptions and the audit chain behave alike in memory and in PostgreSQL.

Partner ids and roles are the tests' own: the PostgreSQL schema comes with the migrations'
demo partners, which these tests must neither meet nor depend on.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import replace

import pytest

from contracts import Jurisdiction
from hub.audit.chain import GENESIS_HASH, AuditEntry, ChainVerifier, Decision
from services.registry.model import Partner, PartnerKey, SubscriptionRecord
from services.registry.parties_domain import Candidate
from services.registry.ports import UnitOfWork
from services.registry.subscriptions_domain import ALL_CASES, PARTY, Subscription
from tests.contract.registry.adapters import MOVE, Adapter, InMemory, OnPostgres, OnPostgresCached
from tests.fixtures.registry import AUDIT_KEY

pytestmark = pytest.mark.asyncio

ROLE = "contract-role"
LUCERNE = Jurisdiction(level="municipality", bfs_number=1061, canton="LU")
CANTON = Jurisdiction(level="canton", canton="LU")
A = Partner("CH/TEST/a", "A", "resident-registration", (ROLE,), "hub.delivery.ch.test.a", "active", LUCERNE)
B = Partner("CH/TEST/b", "B", "tax", (ROLE, "contract-other"), "hub.delivery.ch.test.b", "active", CANTON)
EVENT = "ch.test.contract-event.v1"


def subscription(partner: Partner, **changes: object) -> SubscriptionRecord:
    record = SubscriptionRecord(
        partner_id=partner.partner_id,
        event_type=EVENT,
        case_type="relocation",
        purpose="purpose",
        legal_basis="RHG Art. 11",
        legal_basis_url=None,
        fields=("move_date",),
        retention_days=30,
        status="approved",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


class PartnerDirectoryContract(Adapter, abc.ABC):
    async def test_a_partner_reads_back_as_it_was_put(self, uow: UnitOfWork) -> None:
        mirrored = replace(A, local_person_id_category="CH.LU.1061", sedex_id="T1-1061-1")
        await uow.partners.put(mirrored)
        assert await uow.partners.get(A.partner_id) == mirrored
        assert await uow.partners.get("CH/TEST/nobody") is None

    async def test_a_partner_put_again_is_replaced(self, uow: UnitOfWork) -> None:
        await uow.partners.put(A)
        moved = replace(A, name="A2", roles=("contract-other",), jurisdiction=CANTON, status="suspended")
        await uow.partners.put(moved)
        assert await uow.partners.get(A.partner_id) == moved

    async def test_a_status_changes_alone(self, uow: UnitOfWork) -> None:
        await uow.partners.put(A)
        await uow.partners.set_status(A.partner_id, "suspended")
        assert await uow.partners.get(A.partner_id) == replace(A, status="suspended")
        await uow.partners.set_status("CH/TEST/nobody", "active")
        assert await uow.partners.get("CH/TEST/nobody") is None

    async def test_a_partner_read_then_changed_reads_back_changed(self, uow: UnitOfWork) -> None:
        assert await uow.partners.get(A.partner_id) is None
        assert await uow.partners.candidates([ROLE]) == []
        await uow.partners.put(A)
        assert await uow.partners.get(A.partner_id) == A
        await uow.partners.set_status(A.partner_id, "suspended")
        assert await uow.partners.get(A.partner_id) == replace(A, status="suspended")
        assert await uow.partners.candidates([ROLE]) == [Candidate(A.partner_id, (ROLE,), LUCERNE, False)]

    async def test_candidates_are_every_partner_with_one_of_the_roles_by_id(self, uow: UnitOfWork) -> None:
        await uow.partners.put(B)
        await uow.partners.put(replace(A, status="suspended"))
        await uow.partners.put(replace(A, partner_id="CH/TEST/c", roles=("contract-third",)))
        assert await uow.partners.candidates([ROLE]) == [
            Candidate(A.partner_id, (ROLE,), LUCERNE, False),
            Candidate(B.partner_id, (ROLE, "contract-other"), CANTON, True),
        ]
        assert [
            c.partner_id for c in await uow.partners.candidates(["contract-other", "contract-third"])
        ] == [
            B.partner_id,
            "CH/TEST/c",
        ]
        assert await uow.partners.candidate(B.partner_id) == Candidate(
            B.partner_id, (ROLE, "contract-other"), CANTON, True
        )
        assert await uow.partners.candidate("CH/TEST/nobody") is None


class CatalogueContract(Adapter, abc.ABC):
    async def test_the_catalogue_says_who_may_publish_a_type(self, uow: UnitOfWork) -> None:
        entry = await uow.catalogue.entry(MOVE)
        assert entry is not None
        assert (entry.event_type, entry.publisher_roles, entry.sensitivity) == (MOVE, ("portal",), "secret")
        assert await uow.catalogue.entry("ch.test.unknown.v1") is None


class SubscriptionsContract(Adapter, abc.ABC):
    async def test_approved_subscriptions_of_active_partners_route_by_partner(self, uow: UnitOfWork) -> None:
        await uow.partners.put(B)
        await uow.partners.put(A)
        await uow.subscriptions.put(subscription(B, slot="arrival-tax-office", fields=("arrival",)))
        await uow.subscriptions.put(subscription(A, scope=ALL_CASES, purpose="statistics"))
        await uow.subscriptions.put(subscription(B, case_type=None, purpose="any case type"))
        found = await uow.subscriptions.to(EVENT, "relocation")
        assert [(s.subscription, s.sector, s.delivery_topic) for s in found] == [
            (
                Subscription(A.partner_id, "statistics", "RHG Art. 11", ("move_date",), ALL_CASES),
                A.sector,
                A.delivery_topic,
            ),
            (
                Subscription(
                    B.partner_id, "purpose", "RHG Art. 11", ("arrival",), PARTY, "arrival-tax-office"
                ),
                B.sector,
                B.delivery_topic,
            ),
            (
                Subscription(B.partner_id, "any case type", "RHG Art. 11", ("move_date",)),
                B.sector,
                B.delivery_topic,
            ),
        ]
        assert [s.subscription.purpose for s in await uow.subscriptions.to(EVENT, "building-permit")] == [
            "any case type"
        ]
        assert await uow.subscriptions.to("ch.test.other.v1", "relocation") == []

    async def test_subscriptions_read_then_set_route_at_once(self, uow: UnitOfWork) -> None:
        await uow.partners.put(A)
        assert await uow.subscriptions.to(EVENT, "relocation") == []
        await uow.subscriptions.put(subscription(A))
        assert [s.subscription.partner_id for s in await uow.subscriptions.to(EVENT, "relocation")] == [
            A.partner_id
        ]

    async def test_the_same_partner_type_case_type_and_slot_replace_a_subscription_in_its_place(
        self, uow: UnitOfWork
    ) -> None:
        await uow.partners.put(A)
        await uow.subscriptions.put(subscription(A, purpose="first"))
        await uow.subscriptions.put(subscription(A, purpose="second", slot="arrival-municipality"))
        await uow.subscriptions.put(subscription(A, purpose="first, replaced", fields=("arrival",)))
        found = await uow.subscriptions.to(EVENT, "relocation")
        assert [(s.subscription.purpose, s.subscription.fields) for s in found] == [
            ("first, replaced", ("arrival",)),
            ("second", ("move_date",)),
        ]

    async def test_revoked_requested_and_suspended_partners_subscriptions_route_nothing(
        self, uow: UnitOfWork
    ) -> None:
        await uow.partners.put(A)
        await uow.partners.put(replace(B, status="suspended"))
        await uow.subscriptions.put(subscription(A, status="revoked"))
        await uow.subscriptions.put(subscription(A, status="requested", slot="arrival-municipality"))
        await uow.subscriptions.put(subscription(B))
        assert await uow.subscriptions.to(EVENT, "relocation") == []
        await uow.partners.set_status(B.partner_id, "active")
        assert [s.subscription.partner_id for s in await uow.subscriptions.to(EVENT, "relocation")] == [
            B.partner_id
        ]


class PartnerKeysContract(Adapter, abc.ABC):
    FROM = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    KEY = PartnerKey("contract-key-1", "CH/TEST/a", "cHVibGlj", FROM)

    async def test_a_registered_key_is_found_by_its_id(self, uow: UnitOfWork) -> None:
        await uow.partner_keys.register(self.KEY)
        assert await uow.partner_keys.find(self.KEY.key_id) == self.KEY
        assert await uow.partner_keys.find("contract-key-unknown") is None

    async def test_registered_again_a_key_takes_the_new_window_and_keeps_its_revocation(
        self, uow: UnitOfWork
    ) -> None:
        revoked_at = self.FROM + dt.timedelta(days=3)
        await uow.partner_keys.register(self.KEY)
        await uow.partner_keys.revoke(self.KEY.key_id, revoked_at)
        await uow.partner_keys.revoke(self.KEY.key_id, revoked_at + dt.timedelta(days=1))
        renewed = replace(self.KEY, valid_until=self.FROM + dt.timedelta(days=30))
        await uow.partner_keys.register(renewed)
        assert await uow.partner_keys.find(self.KEY.key_id) == replace(renewed, revoked_at=revoked_at)

    async def test_a_key_read_then_revoked_reads_back_revoked(self, uow: UnitOfWork) -> None:
        assert await uow.partner_keys.find(self.KEY.key_id) is None
        await uow.partner_keys.register(self.KEY)
        assert await uow.partner_keys.find(self.KEY.key_id) == self.KEY
        revoked_at = self.FROM + dt.timedelta(days=1)
        await uow.partner_keys.revoke(self.KEY.key_id, revoked_at)
        assert await uow.partner_keys.find(self.KEY.key_id) == replace(self.KEY, revoked_at=revoked_at)

    async def test_revoking_an_unknown_key_changes_nothing(self, uow: UnitOfWork) -> None:
        await uow.partner_keys.revoke("contract-key-unknown", self.FROM)
        assert await uow.partner_keys.find("contract-key-unknown") is None


class AuditLogContract(Adapter, abc.ABC):
    @staticmethod
    def entry(n: int) -> AuditEntry:
        return AuditEntry(
            decision=Decision.UNROUTED,
            case_id=f"case-{n}",
            case_type="relocation",
            event_id=f"e{n}",
            event_type=MOVE,
            trace_id="0" * 32,
            reason="no approved subscription",
        )

    async def test_entries_are_sealed_onto_the_chain_in_order(self, uow: UnitOfWork) -> None:
        await uow.audit.append([self.entry(1), self.entry(2)])
        await uow.audit.append([])
        await uow.audit.append([self.entry(3)])
        chain = await self.audit_chain(uow)
        assert [(s.seq, s.entry) for s in chain] == [(n, self.entry(n)) for n in (1, 2, 3)]
        assert chain[0].prev_hash == GENESIS_HASH
        assert [s.prev_hash for s in chain[1:]] == [s.entry_hash for s in chain[:-1]]
        assert {s.key_id for s in chain} == {AUDIT_KEY.key_id}
        verifier = ChainVerifier(AUDIT_KEY)
        assert [verifier.feed(sealed) for sealed in chain] == [None, None, None]


class TestInMemoryPartners(PartnerDirectoryContract, InMemory):
    pass


class TestPostgresPartners(PartnerDirectoryContract, OnPostgres):
    pass


class TestInMemoryCatalogue(CatalogueContract, InMemory):
    pass


class TestPostgresCatalogue(CatalogueContract, OnPostgres):
    pass


class TestInMemorySubscriptions(SubscriptionsContract, InMemory):
    pass


class TestPostgresSubscriptions(SubscriptionsContract, OnPostgres):
    pass


class TestInMemoryPartnerKeys(PartnerKeysContract, InMemory):
    pass


class TestPostgresPartnerKeys(PartnerKeysContract, OnPostgres):
    pass


class TestInMemoryAuditLog(AuditLogContract, InMemory):
    pass


class TestPostgresAuditLog(AuditLogContract, OnPostgres):
    pass


class TestPostgresCachedPartners(PartnerDirectoryContract, OnPostgresCached):
    pass


class TestPostgresCachedCatalogue(CatalogueContract, OnPostgresCached):
    pass


class TestPostgresCachedSubscriptions(SubscriptionsContract, OnPostgresCached):
    pass


class TestPostgresCachedPartnerKeys(PartnerKeysContract, OnPostgresCached):
    pass
