"""The vault's tables: one key per reference, rings, destruction, and what reads then see."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.errors import ConfigurationError
from hub.vault import store as vault_store
from hub.vault.crypto import (
    DataKey,
    Erased,
    MasterKey,
    TamperedCiphertext,
    case_ref,
    citizen_ref,
    seal,
    tombstone,
)
from hub.vault.schema import migrate_vault
from tests.integration.vault.support import Pools

pytestmark = pytest.mark.asyncio
CONTEXT = "registry.cases.details_sealed:eumzug-1"


def _live(key: DataKey | Erased) -> DataKey:
    assert isinstance(key, DataKey)
    return key


async def test_a_reference_names_one_key_created_on_first_use(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        first = _live(await vault_store.key_for(conn, pools.master, case_ref("eumzug-1")))
        again = _live(await vault_store.key_for(conn, pools.master, case_ref("eumzug-1")))
        other = _live(await vault_store.key_for(conn, pools.master, case_ref("eumzug-2")))
        stored = await conn.fetchval("SELECT wrapped FROM vault.data_keys WHERE key_id = $1", first.key_id)
    assert again == first
    assert other.key_id != first.key_id
    assert first.material not in stored  # only wrapped


async def test_two_writers_creating_the_same_reference_get_the_same_key(pools: Pools) -> None:
    async with pools.registry.acquire() as one, pools.registry.acquire() as two:
        first_tx = one.transaction()
        await first_tx.start()
        created = _live(await vault_store.key_for(one, pools.master, case_ref("eumzug-race")))
        async with two.transaction():
            waiting = asyncio.create_task(vault_store.key_for(two, pools.master, case_ref("eumzug-race")))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # it waits for the first writer's commit
            await first_tx.commit()
            assert _live(await waiting) == created
        assert await one.fetchval("SELECT count(*) FROM vault.data_keys") == 1  # the loser's key is gone


async def test_a_destroyed_or_unknown_key_reads_as_erased_and_a_moved_value_as_tampered(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        key = _live(await vault_store.key_for(conn, pools.master, case_ref("eumzug-1")))
        blob = vault_store.seal_json(key, {"first_name": "Anna"}, CONTEXT)
        assert await vault_store.open_json(conn, pools.master, blob, CONTEXT) == {"first_name": "Anna"}
        with pytest.raises(TamperedCiphertext):
            await vault_store.open_json(conn, pools.master, blob, CONTEXT.replace("eumzug-1", "eumzug-2"))
        unknown = seal(DataKey(uuid.uuid4(), bytes(32)), b"{}", CONTEXT)
        assert isinstance(await vault_store.open_json(conn, pools.master, unknown, CONTEXT), Erased)
        destroyed = await vault_store.destroy(conn, refs=[case_ref("eumzug-1")])
        assert destroyed.keys == 1
        assert await vault_store.open_json(conn, pools.master, blob, CONTEXT) == Erased(key.key_id)
        assert await vault_store.is_erased(conn, case_ref("eumzug-1"))
        assert (
            await conn.fetchval("SELECT wrapped FROM vault.data_keys WHERE key_id = $1", key.key_id) is None
        )
        assert isinstance(await vault_store.key_for(conn, pools.master, case_ref("eumzug-1")), Erased)
        tomb = tombstone(key.key_id)
        assert await vault_store.open_json(conn, pools.master, tomb, CONTEXT) == Erased(key.key_id)


async def test_linked_keys_form_one_ring_and_erasure_takes_all_of_it(pools: Pools) -> None:
    master = pools.master
    subject = master.subject_ref("7560000000019")
    async with pools.registry.acquire() as conn:
        person = _live(await vault_store.key_for(conn, master, subject))
        early_case = _live(await vault_store.key_for(conn, master, case_ref("eumzug-early")))
        await vault_store.bind(conn, case_ref("eumzug-new"), person.key_id)
        await vault_store.bind(conn, citizen_ref("citizen-services:abc"), early_case.key_id)
        await vault_store.bind(conn, citizen_ref("citizen-services:abc"), person.key_id)  # same person: merge
        bystander = _live(await vault_store.key_for(conn, master, case_ref("eumzug-other")))

        destroyed = await vault_store.destroy(conn, refs=[subject])

        assert destroyed.keys == 2
        assert destroyed.case_ids == ("eumzug-early", "eumzug-new")
        refs = {row["ref"] for row in await conn.fetch("SELECT ref FROM vault.key_refs")}
        # What identifies the person is gone; the case references say "erased" from now on.
        assert refs == {case_ref("eumzug-early"), case_ref("eumzug-new"), case_ref("eumzug-other")}
        assert isinstance(await vault_store.key_for(conn, master, case_ref("eumzug-early")), Erased)
        assert await vault_store.key_for(conn, master, case_ref("eumzug-other")) == bystander
        # The same person later is someone new: a fresh key.
        again = _live(await vault_store.key_for(conn, master, subject))
        assert again.key_id != person.key_id


async def test_a_key_linked_to_an_erased_person_is_destroyed_too(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        erased = _live(await vault_store.key_for(conn, pools.master, case_ref("eumzug-gone")))
        await vault_store.destroy(conn, key_ids=[erased.key_id])
        subject = pools.master.subject_ref("7560000000019")
        late = _live(await vault_store.key_for(conn, pools.master, subject))
        await vault_store.bind(conn, case_ref("eumzug-late"), late.key_id)
        await vault_store.bind(conn, case_ref("eumzug-gone"), late.key_id)  # linked to the erased one
        assert isinstance(await vault_store.key_for(conn, pools.master, case_ref("eumzug-late")), Erased)
        # Nothing identifying stays behind: the person, if they come back, gets a new key.
        assert _live(await vault_store.key_for(conn, pools.master, subject)).key_id != late.key_id


async def test_nothing_to_destroy_is_reported_as_nothing(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        assert await vault_store.destroy(conn, refs=["subject:nobody"]) == vault_store.Destruction(0, ())


async def test_a_process_with_another_master_key_says_so(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        await vault_store.key_for(conn, pools.master, case_ref("eumzug-1"))
        with pytest.raises(ConfigurationError, match="wrapped by master key"):
            await vault_store.key_for(conn, MasterKey(bytes(range(32))), case_ref("eumzug-1"))


async def test_the_vault_schema_is_migrated_once_for_all_services(pools: Pools) -> None:
    async with pools.registry.acquire() as conn:
        rows = await conn.fetch("SELECT component, version FROM vault.schema_migrations")
        assert [tuple(row) for row in rows] == [("hub-vault", 1)]
        for schema in ("registry", "identity", "notifications"):
            assert not await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {schema}.schema_migrations WHERE component = 'hub-vault')"
            )
        assert await migrate_vault(conn) == []  # applied already; the connection keeps its schema
        assert await conn.fetchval("SHOW search_path") == '"registry",public'
