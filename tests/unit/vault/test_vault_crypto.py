"""The vault's cryptography without a database: sealing, wrapping, blind indexes, master key file."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from hub.cli.casefile import reader_master_key
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.vault.crypto import (
    ERASED_TEXT,
    HEADER_BYTES,
    VERSION,
    Erased,
    MasterKey,
    TamperedCiphertext,
    key_id_of,
    new_data_key,
    seal,
    tombstone,
    unseal,
)
from hub.vault.master import load_master_key, master_key_path

CONTEXT = "registry.cases.details_sealed:eumzug-1"
SECRET = bytes(range(32))


def test_a_sealed_value_opens_with_its_key_and_context() -> None:
    key = new_data_key()
    blob = seal(key, b"Anna Muster", CONTEXT)
    assert unseal(key, blob, CONTEXT) == b"Anna Muster"
    assert b"Anna" not in blob


def test_the_ciphertext_carries_its_version_and_key_id_and_a_fresh_nonce() -> None:
    key = new_data_key()
    first, second = seal(key, b"same", CONTEXT), seal(key, b"same", CONTEXT)
    assert first[0] == VERSION
    assert key_id_of(first) == key.key_id
    assert first != second  # a nonce per value: equal plaintexts are not recognisable


def test_a_ciphertext_moved_to_another_row_or_column_does_not_open() -> None:
    key = new_data_key()
    blob = seal(key, b"Anna Muster", CONTEXT)
    with pytest.raises(TamperedCiphertext):
        unseal(key, blob, "registry.cases.details_sealed:eumzug-2")
    with pytest.raises(TamperedCiphertext):
        unseal(key, blob, "registry.pending_deliveries.data_sealed:eumzug-1")


@pytest.mark.parametrize("position", [0, HEADER_BYTES - 1, HEADER_BYTES + 3, -1])
def test_a_changed_byte_anywhere_is_detected(position: int) -> None:
    key = new_data_key()
    blob = bytearray(seal(key, b"Anna Muster", CONTEXT))
    blob[position] ^= 0x01
    with pytest.raises(TamperedCiphertext):
        unseal(key, bytes(blob), CONTEXT)


def test_another_key_cannot_open_it() -> None:
    blob = seal(new_data_key(), b"Anna Muster", CONTEXT)
    with pytest.raises(TamperedCiphertext):
        unseal(new_data_key(), blob, CONTEXT)


def test_a_truncated_value_is_not_a_ciphertext() -> None:
    with pytest.raises(TamperedCiphertext):
        key_id_of(bytes([VERSION]) + uuid.uuid4().bytes)


def test_a_tombstone_names_the_destroyed_key_and_reads_as_erased_text() -> None:
    key_id = uuid.uuid4()
    assert key_id_of(tombstone(key_id)) == key_id
    assert str(Erased(key_id)) == ERASED_TEXT


def test_data_keys_are_wrapped_bound_to_their_id() -> None:
    master, key = MasterKey(SECRET), new_data_key()
    wrapped = master.wrap(key)
    assert key.material not in wrapped
    assert master.unwrap(key.key_id, wrapped) == key
    with pytest.raises(TamperedCiphertext):
        master.unwrap(uuid.uuid4(), wrapped)  # swapped into another key's row
    with pytest.raises(TamperedCiphertext):
        MasterKey(bytes(reversed(SECRET))).unwrap(key.key_id, wrapped)


def test_keys_never_show_their_material() -> None:
    key = new_data_key()
    assert key.material.hex() not in repr(key)
    assert SECRET.hex() not in repr(MasterKey(SECRET))
    assert MasterKey(SECRET).key_id == MasterKey(SECRET).key_id != MasterKey(bytes(32)).key_id


def test_blind_indexes_are_equal_for_equal_values_only_per_purpose_and_master() -> None:
    master = MasterKey(SECRET)
    vn = "7560000000019"
    assert master.blind_index("identity.vn", vn) == master.blind_index("identity.vn", vn)
    assert master.blind_index("identity.vn", vn) != master.blind_index("identity.vn", "7560000000026")
    assert master.blind_index("identity.vn", vn) != master.blind_index("vault.subject", vn)
    assert master.blind_index("identity.vn", vn) != MasterKey(bytes(32)).blind_index("identity.vn", vn)
    assert vn not in master.subject_ref(vn)
    assert master.subject_ref(vn).startswith("subject:")


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        MasterKey(bytes(31))


def test_the_master_key_file_is_created_once_under_the_state_dir(tmp_path: Path) -> None:
    settings = HubSettings(state_dir=tmp_path, master_key_file=None)
    first = load_master_key(settings, create=True)
    path = master_key_path(settings)
    assert path == tmp_path / "secrets" / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(settings, create=True).key_id == first.key_id
    assert list(path.parent.iterdir()) == [path]  # no draft left behind


def test_commands_never_create_a_master_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no vault master key"):
        load_master_key(HubSettings(state_dir=tmp_path, master_key_file=None), create=False)
    assert not (tmp_path / "secrets").exists()


def test_a_configured_master_key_file_must_exist_and_be_long_enough(tmp_path: Path) -> None:
    configured = HubSettings(state_dir=tmp_path, master_key_file=tmp_path / "missing.key")
    with pytest.raises(ConfigurationError, match="HUB_MASTER_KEY_FILE"):
        load_master_key(configured, create=True)
    short = tmp_path / "short.key"
    short.write_text("00" * 16)
    with pytest.raises(ConfigurationError, match="shorter than 32 bytes"):
        load_master_key(HubSettings(state_dir=tmp_path, master_key_file=short), create=False)
    short.write_text("not hex")
    with pytest.raises(ConfigurationError, match="not hex"):
        load_master_key(HubSettings(state_dir=tmp_path, master_key_file=short), create=False)


def test_a_reader_of_sealed_texts_loads_the_hubs_own_key_and_never_creates_one(tmp_path: Path) -> None:
    # `hub case show` and the demo open timeline texts with the key the hub's settings name;
    # without one the texts show as sealed, and no key is invented that would open nothing.
    settings = HubSettings(state_dir=tmp_path, master_key_file=None)
    assert reader_master_key(settings) is None
    assert not (tmp_path / "secrets").exists()
    created = load_master_key(settings, create=True)
    found = reader_master_key(settings)
    assert found is not None
    assert found.key_id == created.key_id
