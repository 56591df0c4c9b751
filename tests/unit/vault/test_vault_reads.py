"""Reading sealed values: a destroyed or unknown key yields ``Erased``, a moved value is refused.

The vault's table is replaced by a dict: what is tested is how reads treat what it holds.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hub.vault import store as vault_store
from hub.vault.crypto import DataKey, Erased, MasterKey, TamperedCiphertext, new_data_key, tombstone

MASTER = MasterKey(bytes(range(32)))
CONTEXT = "notifications.notifications.sealed:eumzug-1:received"


class FakeVaultTable:
    """Answers the one query ``keys_by_id`` asks, from ``rows`` keyed by key id."""

    def __init__(self, *keys: DataKey, destroyed: tuple[uuid.UUID, ...] = ()) -> None:
        self.rows = {
            key.key_id: {"key_id": key.key_id, "wrapped": MASTER.wrap(key), "master_key_id": MASTER.key_id}
            for key in keys
        }
        for key_id in destroyed:
            self.rows[key_id] = {"key_id": key_id, "wrapped": None, "master_key_id": MASTER.key_id}

    async def fetch(self, _query: str, key_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        return [self.rows[key_id] for key_id in key_ids if key_id in self.rows]


@pytest.mark.asyncio
async def test_values_open_with_a_live_key_and_read_as_erased_without_one() -> None:
    live, destroyed, unknown = new_data_key(), new_data_key(), new_data_key()
    table: Any = FakeVaultTable(live, destroyed=(destroyed.key_id,))
    sealed = [
        (vault_store.seal_json(live, {"recipient": "anna@example.ch"}, CONTEXT), CONTEXT),
        (vault_store.seal_json(destroyed, {"recipient": "bruno@example.ch"}, CONTEXT), CONTEXT),
        (vault_store.seal_json(unknown, {"recipient": "carla@example.ch"}, CONTEXT), CONTEXT),
        (tombstone(destroyed.key_id), CONTEXT),
    ]
    opened = await vault_store.open_json_many(table, MASTER, sealed)
    assert opened == [
        {"recipient": "anna@example.ch"},
        Erased(destroyed.key_id),
        Erased(unknown.key_id),
        Erased(destroyed.key_id),
    ]


@pytest.mark.asyncio
async def test_a_value_under_the_wrong_context_raises_or_is_reported_alone() -> None:
    key = new_data_key()
    table: Any = FakeVaultTable(key)
    good = vault_store.seal_json(key, {"body": "Guten Tag"}, CONTEXT)
    moved = vault_store.seal_json(key, {"body": "Bonjour"}, CONTEXT.replace("eumzug-1", "eumzug-2"))
    with pytest.raises(TamperedCiphertext):
        await vault_store.open_json_many(table, MASTER, [(good, CONTEXT), (moved, CONTEXT)])
    each = await vault_store.open_json_each(
        table, MASTER, [(good, CONTEXT), (moved, CONTEXT), (b"x", CONTEXT)]
    )
    assert each[0] == {"body": "Guten Tag"}
    assert isinstance(each[1], TamperedCiphertext)
    assert isinstance(each[2], TamperedCiphertext)  # not even a ciphertext


def test_an_erased_key_seals_nothing_but_a_tombstone() -> None:
    key_id = uuid.uuid4()
    blob = vault_store.seal_json(Erased(key_id), {"first_name": "Anna"}, CONTEXT)
    assert b"Anna" not in blob
    assert blob[1:17] == key_id.bytes
