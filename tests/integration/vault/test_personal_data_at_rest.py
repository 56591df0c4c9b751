"""Personal data at rest across the three services, and crypto-shredding one person of two.

Two citizens go through what the registry, identity and notifications store of them; the
database (rows as read and files on disk) holds none of their names, email addresses,
AHVN13s, dates of birth, local ids or addresses in clear. Erasing one makes all of theirs
unreadable in every service, while the other's stays readable.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts import PseudonymsRequested
from hub.cli.casefile import load_case_view
from hub.vault.crypto import ERASED_TEXT, Erased, TamperedCiphertext
from services.identity import handlers as identity_handlers
from services.identity.adapters.postgres import PostgresRepositories
from services.identity.erase import Erasure, NothingToErase, erase_person
from services.identity.ports import UnitOfWork
from services.notifications.domain import ERASED_REASON, TAMPERED_REASON
from services.registry.case_domain import Case
from tests.fixtures.registry import registry_unit_of_work
from tests.integration.identity import support as identity
from tests.integration.notifications.conftest import history
from tests.integration.notifications.conftest import units as notifications_units
from tests.integration.vault.scan import hits, readable_rows, relation_files
from tests.integration.vault.support import (
    ANNA,
    BRUNO,
    Citizen,
    Pools,
    dispatch,
    notify,
    open_case,
    published,
    store,
)

pytestmark = pytest.mark.asyncio


async def test_no_personal_value_is_stored_in_clear(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    needles = anna.needles + bruno.needles
    async with pools.registry.acquire() as conn:
        assert hits(await readable_rows(conn), needles) == []
        assert hits(await relation_files(conn), needles) == []
        # The scans do find what is there: a value written in clear is seen in rows and on disk.
        await conn.execute("CREATE TABLE registry.scan_control (note text)")
        await conn.execute("INSERT INTO registry.scan_control VALUES ($1)", f"Hallo {anna.person.first_name}")
        assert hits(await readable_rows(conn), needles) == [('"registry"."scan_control"', "Annelies")]
        assert ("registry.scan_control", "Annelies") in hits(await relation_files(conn), needles)


async def test_erasing_one_person_makes_all_of_theirs_unreadable_and_leaves_the_other(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    # Queued before the erasure, sent after it: the dispatcher must not crash on it.
    waiting = await notify(pools, anna, "completed", send=False)

    erasure = await _erase(pools, vn=anna.person.vn)

    assert (erasure.persons, erasure.keys, erasure.cases) == (1, 1, (anna.case_id,))
    await _everything_erased(pools, anna)
    await _everything_readable(pools, bruno)
    sender = await dispatch(pools)
    assert sender.sent == []  # nothing went to the erased person's address
    assert await history(pools.notifications, waiting) == ["created", "sending", "permanent-failure"]
    async with pools.notifications.acquire() as conn:
        assert (
            await conn.fetchval("SELECT last_error FROM notifications WHERE notification_id = $1", waiting)
            == ERASED_REASON
        )
    with pytest.raises(NothingToErase):  # nothing is left to recognise the person by
        await _erase(pools, vn=anna.person.vn)


async def test_a_person_is_erased_by_their_citizen_id_too(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    erasure = await _erase(pools, citizen_id=bruno.citizen_id)
    assert (erasure.persons, erasure.keys, erasure.cases) == (1, 1, (bruno.case_id,))
    await _everything_erased(pools, bruno)
    await _everything_readable(pools, anna)


async def test_a_case_opened_before_identity_answered_is_erased_and_identity_does_not_take_it_in(
    pools: Pools,
) -> None:
    anna = await open_case(pools, ANNA)  # identity has not seen the request yet
    erasure = await _erase(pools, vn=anna.person.vn)
    assert (erasure.persons, erasure.keys, erasure.cases) == (0, 1, (anna.case_id,))
    assert (await _case(pools, anna)).erased

    async def issue(msg: Any, uow: UnitOfWork) -> None:
        await identity_handlers.issue_pseudonyms(msg, uow, secret=identity.SECRET)

    late = PseudonymsRequested(person=anna.person, recipients=(), citizen_pseudonym=True)
    assert (
        await identity.handle(
            pools.identity, pools.master, issue, identity.incoming(late, case_id=anna.case_id)
        )
        == []
    )
    async with pools.identity.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 0


async def test_a_sealed_value_moved_to_another_row_is_refused(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    async with pools.registry.acquire() as conn:
        await conn.execute(
            "UPDATE cases SET details_sealed = (SELECT details_sealed FROM cases WHERE case_id = $2) "
            "WHERE case_id = $1",
            anna.case_id,
            bruno.case_id,
        )
    with pytest.raises(TamperedCiphertext):
        await _case(pools, anna)
    assert (await _case(pools, bruno)).details["person"]["first_name"] == bruno.person.first_name


async def test_a_tampered_notice_is_failed_alone_and_the_others_are_sent(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    anna_notice = await notify(pools, anna, "completed", send=False)
    bruno_notice = await notify(pools, bruno, "completed", send=False)
    async with pools.notifications.acquire() as conn:  # Bruno's sealed notice copied over Anna's
        await conn.execute(
            "UPDATE notifications SET sealed = (SELECT sealed FROM notifications WHERE notification_id = $2) "
            "WHERE notification_id = $1",
            anna_notice,
            bruno_notice,
        )
    sender = await dispatch(pools)
    assert [message["To"] for message in sender.sent] == [bruno.report.contact.email]
    assert await history(pools.notifications, anna_notice) == ["created", "sending", "permanent-failure"]
    async with pools.notifications.acquire() as conn:
        reason = await conn.fetchval(
            "SELECT last_error FROM notifications WHERE notification_id = $1", anna_notice
        )
    assert reason == TAMPERED_REASON


async def _erase(pools: Pools, *, vn: str | None = None, citizen_id: str | None = None) -> Erasure:
    await published(pools)
    async with pools.identity.acquire() as conn, conn.transaction():
        return await erase_person(conn, pools.master, vn=vn, citizen_id=citizen_id)


async def _case(pools: Pools, citizen: Citizen) -> Case:
    async with pools.registry.acquire() as conn:
        case = await registry_unit_of_work(conn, pools.master).cases.get(citizen.case_id)
    assert case is not None
    return case


async def _everything_erased(pools: Pools, citizen: Citizen) -> None:
    case = await _case(pools, citizen)
    assert case.erased
    # Only public and internal fields are left: which register, which municipalities, the language.
    assert case.details["person"] == {"local_person_id": {"category": "CH.LU.1061"}}
    assert case.details["contact"] == {"language": "de"}
    assert set(case.details) == {"person", "contact", "departure", "arrival"}
    assert case.details["arrival"]["bfs_number"] == 1061  # internal fields stay for the record
    async with pools.registry.acquire() as conn, conn.transaction():
        assert await registry_unit_of_work(conn, pools.master).pending.take(citizen.request_id) is None
        view = await load_case_view(conn, citizen.case_id, master=pools.master)
    assert view is not None
    assert view.personal_data == "erased"
    async with pools.identity.acquire() as conn:
        persons = PostgresRepositories(conn, pools.master).persons
        assert await persons.by_vn(citizen.person.vn) is None
        assert await persons.names_born_on(citizen.person.date_of_birth) == []
        person_id = await conn.fetchval(
            "SELECT person_id FROM issued_pseudonyms WHERE pseudonym = $1", citizen.citizen_id
        )
        assert isinstance(await persons.record(person_id), Erased)
        assert await persons.local_ids_of(person_id) == []
    async with notifications_units(pools.notifications, pools.master).begin() as uow:
        [message] = await uow.inbox.of(citizen.citizen_id)
        assert message.erased
        assert message.subject == message.body == ERASED_TEXT
        received = [
            n for n in await uow.notifications.of_case(citizen.case_id) if ":received" in n.notification_id
        ]
        assert len(received) == 2  # the email and its inbox copy
        assert all(n.unreadable == "erased" and n.recipient == ERASED_TEXT for n in received)


async def _everything_readable(pools: Pools, citizen: Citizen) -> None:
    case = await _case(pools, citizen)
    assert not case.erased
    expected = citizen.report.model_dump(mode="json")
    expected["person"].pop("vn")
    assert case.details == expected
    async with pools.registry.acquire() as conn, conn.transaction():
        pending = await registry_unit_of_work(conn, pools.master).pending.take(citizen.request_id)
        view = await load_case_view(conn, citizen.case_id, master=pools.master)
    assert pending is not None
    assert pending.data == expected
    assert view is not None
    assert view.personal_data == "sealed"
    async with pools.identity.acquire() as conn:
        persons = PostgresRepositories(conn, pools.master).persons
        person_id = await persons.by_vn(citizen.person.vn)
        assert person_id is not None
        assert await persons.record(person_id) == citizen.person.model_copy(update={"local_person_id": None})
        assert await persons.local_ids_of(person_id) == [citizen.person.local_person_id]
        assert [p for p, *_ in await persons.names_born_on(citizen.person.date_of_birth)] == [person_id]
    async with notifications_units(pools.notifications, pools.master).begin() as uow:
        [message] = await uow.inbox.of(citizen.citizen_id)
        assert not message.erased
        assert citizen.person.first_name in message.body
