"""The master key ring on disk: file names and contents, loading, promoting, retiring, reloading.

No database: what is tested is which versions a process knows, which one wraps, and that
the blind indexes never change with the ring.
"""

from __future__ import annotations

import logging
import secrets
import stat
from pathlib import Path

import pytest

from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.vault import crypto as vault
from hub.vault.crypto import KEY_BYTES, MasterKey, MasterVersion, TamperedCiphertext, new_data_key
from hub.vault.master import (
    FileState,
    add_pending_version,
    ensure_index_root,
    index_path,
    load_master_key,
    load_ring,
    parse_ring_name,
    promote,
    read_ring,
    retire_version,
    ring_files,
)

VN = "7560000000019"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A hub from before rings: one ``master.key`` with a hex secret."""
    path = tmp_path / "secrets" / "master.key"
    path.parent.mkdir()
    path.write_text(secrets.token_hex(KEY_BYTES) + "\n")
    return path


@pytest.fixture
def reload_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A ring reloads on an unknown version at most once a second; tests do not wait for it.
    monkeypatch.setattr(vault, "_RELOAD_MIN_S", 0.0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("master.key", (1, FileState.ACTIVE)),
        ("master.key.retired", (1, FileState.RETIRED)),
        ("master.key.v2", (2, FileState.ACTIVE)),
        ("master.key.v2.pending", (2, FileState.PENDING)),
        ("master.key.v17.retired", (17, FileState.RETIRED)),
        ("master.key.v1", None),  # version 1 is the base file itself
        ("master.key.v02", None),
        ("master.key.v2.old", None),
        ("master.key.vx", None),
        ("master.key.index", None),
        (".master.key.v2.pending.4242.draft", None),
        ("audit.key", None),
    ],
)
def test_file_names_say_version_and_state(name: str, expected: tuple[int, FileState] | None) -> None:
    assert parse_ring_name("master.key", name) == expected


def test_a_single_master_key_file_is_version_1_of_the_ring_without_any_step(base: Path) -> None:
    secret = bytes.fromhex(base.read_text())
    ring = load_master_key(HubSettings(master_key_file=base), create=False)
    [only] = ring.versions()
    assert (only.number, only.current, only.pending) == (1, True, False)
    before_rings = MasterKey(secret)
    # The same fingerprint as stored next to every key wrapped so far, the same indexes.
    assert ring.key_id == before_rings.key_id
    assert ring.subject_ref(VN) == before_rings.subject_ref(VN)
    assert ring.blind_index("identity.vn", VN) == before_rings.blind_index("identity.vn", VN)
    key = new_data_key()
    assert before_rings.unwrap(key.key_id, ring.wrap(key)) == key
    assert [p.name for p in base.parent.iterdir()] == ["master.key"]  # loading writes nothing


def test_a_new_version_is_pending_first_and_current_once_promoted(base: Path) -> None:
    assert add_pending_version(base) == 2
    pending = base.with_name("master.key.v2.pending")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert len(bytes.fromhex(pending.read_text())) == KEY_BYTES
    ring = load_ring(base)
    assert [(v.number, v.pending, v.current) for v in ring.versions()] == [(1, False, True), (2, True, False)]
    v1, v2 = ring.versions()
    assert ring.wrap_current(new_data_key())[0] == v1.key_id  # pending wraps nothing

    promote(base, 2)

    assert [f.name for f in sorted(base.parent.iterdir())] == ["master.key", "master.key.v2"]
    promoted = load_ring(base)
    assert (promoted.version, promoted.key_id) == (2, v2.key_id)
    assert promoted.subject_ref(VN) == ring.subject_ref(VN)
    key = new_data_key()
    old_wrapping = ring.wrap(key)
    assert promoted.unwrap(key.key_id, old_wrapping, v1.key_id) == key  # every version unwraps
    assert promoted.wrap_current(key)[0] == v2.key_id


def test_version_numbers_are_never_reused_and_files_never_replaced(base: Path) -> None:
    promote(base, add_pending_version(base))
    retire_version(base, 2, delete=False)
    assert add_pending_version(base) == 3  # 2 was retired, not free
    base.with_name("master.key.v3").write_text(secrets.token_hex(KEY_BYTES))
    with pytest.raises(FileExistsError):
        promote(base, 3)  # an active file of that version exists: nothing is overwritten
    assert base.with_name("master.key.v3.pending").exists()


def test_an_active_copy_of_a_version_wins_over_its_pending_copy(base: Path) -> None:
    add_pending_version(base)
    pending = base.with_name("master.key.v2.pending")
    base.with_name("master.key.v2").write_text(pending.read_text())
    assert [(v.number, v.pending) for v in read_ring(base)[0]] == [(1, False), (2, False)]


def test_retiring_version_1_keeps_the_blind_indexes(base: Path) -> None:
    before = load_ring(base)
    promote(base, add_pending_version(base))

    retired = retire_version(base, 1, delete=False)

    assert retired == base.with_name("master.key.retired")
    assert not base.exists()
    index = index_path(base)
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    after = load_ring(base)
    assert [v.number for v in after.versions()] == [2]
    assert after.subject_ref(VN) == before.subject_ref(VN)
    assert after.blind_index("identity.vn", VN) == before.blind_index("identity.vn", VN)
    assert not after.knows(before.key_id)
    key = new_data_key()
    with pytest.raises(TamperedCiphertext):
        after.unwrap(key.key_id, before.wrap(key), before.key_id)
    # The index root cannot stand in for the key it came from.
    assert bytes.fromhex(index.read_text()) != bytes.fromhex(retired.read_text())


def test_a_service_does_not_start_a_fresh_key_once_version_1_is_retired(base: Path) -> None:
    promote(base, add_pending_version(base))
    retire_version(base, 1, delete=True)
    settings = HubSettings(state_dir=base.parent.parent, master_key_file=None)
    ring = load_master_key(settings, create=True)
    assert ring.version == 2
    assert not base.exists()
    # Even with every version retired, nothing new appears: fail closed.
    retire_version(base, 2, delete=False)
    with pytest.raises(ConfigurationError, match="no vault master key"):
        load_master_key(settings, create=True)
    assert not base.exists()


def test_an_index_file_that_does_not_belong_to_version_1_is_refused(base: Path) -> None:
    index_path(base).write_text(secrets.token_hex(KEY_BYTES))
    with pytest.raises(ConfigurationError, match="does not belong to master key version 1"):
        load_ring(base)
    index_path(base).write_text("00" * 33)
    with pytest.raises(ConfigurationError, match="exactly 32 bytes"):
        load_ring(base)


def test_the_index_root_is_written_once(base: Path) -> None:
    index = ensure_index_root(base)
    first = index.read_text()
    assert ensure_index_root(base) == index
    assert index.read_text() == first
    assert [f.number for f in ring_files(base)] == [1]  # the index is no version


def test_a_ring_without_a_current_version_or_index_root_is_refused() -> None:
    secret = secrets.token_bytes(KEY_BYTES)
    with pytest.raises(ValueError, match="no current version"):
        MasterKey([MasterVersion(2, secret, pending=True)], index_root=bytes(32))
    with pytest.raises(ValueError, match="blind-index root"):
        MasterKey([MasterVersion(2, secret)])
    with pytest.raises(ValueError, match="twice"):
        MasterKey([MasterVersion(1, secret), MasterVersion(1, secrets.token_bytes(KEY_BYTES))])


@pytest.mark.usefixtures("reload_at_once")
def test_a_running_process_meets_a_new_version_and_loads_it(base: Path) -> None:
    service = load_ring(base)  # loaded at start, before anyone rotated
    promote(base, add_pending_version(base))
    newer = load_ring(base)
    key = new_data_key()
    wrapped_by, wrapped = newer.wrap_current(key)

    assert service.knows(wrapped_by)  # unknown at first: the ring read itself again
    assert service.unwrap(key.key_id, wrapped, wrapped_by) == key
    assert service.version == 2  # and it wraps with the new version from now on


def test_a_running_process_wraps_with_a_promoted_version_once_its_view_is_old(base: Path) -> None:
    versions, root = read_ring(base)
    service = MasterKey(versions, index_root=root, source=lambda: read_ring(base), refresh_s=3600)
    promote(base, add_pending_version(base))
    first_by, _ = service.wrap_current(new_data_key())
    assert first_by == service.versions()[0].key_id  # its view is fresh: no file read per key
    fresh = MasterKey(versions, index_root=root, source=lambda: read_ring(base), refresh_s=0)
    assert fresh.wrap_current(new_data_key())[0] == load_ring(base).key_id


@pytest.mark.usefixtures("reload_at_once")
def test_a_broken_ring_file_does_not_break_a_running_process(
    base: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = load_ring(base)
    base.with_name("master.key.v2").write_text("half written")
    with caplog.at_level(logging.WARNING, logger="hub.vault.crypto"):
        assert not service.knows("0123456789abcdef")
    assert "not reloaded" in caplog.text
    assert "half written" not in caplog.text
    key = new_data_key()
    assert service.unwrap(key.key_id, service.wrap(key)) == key


def test_the_ring_never_shows_a_secret(base: Path) -> None:
    promote(base, add_pending_version(base))
    ring = load_ring(base)
    texts = [repr(ring), repr(read_ring(base)[0]), *(repr(v) for v in ring.versions())]
    for file in ring_files(base):
        assert all(file.path.read_text().strip() not in text for text in texts)
