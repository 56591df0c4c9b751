"""Rotating the vault's master key on real PostgreSQL, while the services' code keeps working.

Each test has a ring of its own (a ``master.key`` as a hub before rings had it), loaded as
a service loads it at start and given to the services' code (``Pools.master``). ``hub vault
...`` runs as an operator runs it, in a thread (it calls asyncio.run), against the test
database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from hub.cli import main as cli
from hub.vault import crypto as vault
from hub.vault import rotate as vault_rotate
from hub.vault import store as vault_store
from hub.vault.crypto import KEY_BYTES, DataKey, Erased, MasterKey, TamperedCiphertext, case_ref
from hub.vault.master import load_ring
from services.identity.adapters.postgres import PostgresRepositories as IdentityRepositories
from tests.fixtures.registry import registry_unit_of_work
from tests.integration.notifications.conftest import units as notifications_units
from tests.integration.vault.support import ANNA, BRUNO, Citizen, Pools, store

pytestmark = pytest.mark.asyncio


@pytest.fixture
def base(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Version 1 alone; the operator's shell (HUB_DATABASE_URL, HUB_MASTER_KEY_FILE) points
    at it."""
    path = tmp_path / "secrets" / "master.key"
    path.parent.mkdir()
    path.write_text(secrets.token_hex(KEY_BYTES))
    for name in ("HUB_KAFKA_BOOTSTRAP_SERVERS", "HUB_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_MASTER_KEY_FILE", str(path))
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))
    # A ring reloads on meeting an unknown version at most once a second; no test waits that.
    monkeypatch.setattr(vault, "_RELOAD_MIN_S", 0.0)
    return path


@pytest.fixture
def pools(pools: Pools, base: Path) -> Pools:
    """The services' pools, their code given the ring at ``base`` as a service loads it at
    start (it reads itself again when it meets a version it does not know)."""
    return dataclasses.replace(pools, master=load_ring(base))


async def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _status(capsys: pytest.CaptureFixture[str]) -> dict[int, dict[str, Any]]:
    code, out, err = await _hub(capsys, "vault", "status", "--json")
    assert code == 0, err
    return {version["number"]: version for version in json.loads(out)["versions"]}


async def _wrapped_by(pools: Pools) -> dict[str, int]:
    """Live data keys per master key fingerprint, straight from the table."""
    async with pools.registry.acquire() as conn:
        rows = await conn.fetch(
            "SELECT master_key_id, count(*) AS n FROM vault.data_keys WHERE wrapped IS NOT NULL GROUP BY 1"
        )
    return {row["master_key_id"]: row["n"] for row in rows}


async def _reads(pools: Pools, citizen: Citizen) -> tuple[Any, ...]:
    """What each service reads of the citizen: the case details, identity's record found
    through its blind index of the AHVN13, and the inbox message."""
    async with pools.registry.acquire() as conn:
        case = await registry_unit_of_work(conn, pools.master).cases.get(citizen.case_id)
    assert case is not None
    async with pools.identity.acquire() as conn:
        persons = IdentityRepositories(conn, pools.master).persons  # the ring the services run with
        person_id = await persons.by_vn(citizen.person.vn)
        record = None if person_id is None else await persons.record(person_id)
    async with notifications_units(pools.notifications, pools.master).begin() as uow:
        [message] = await uow.inbox.of(citizen.citizen_id)
    return (
        ERASED if case.erased else case.details["person"]["first_name"],
        ERASED if isinstance(record, Erased) else None if record is None else record.first_name,
        ERASED if message.erased else citizen.person.first_name in message.body,
    )


ERASED = "erased"


def _readable(citizen: Citizen) -> tuple[Any, ...]:
    return (citizen.person.first_name, citizen.person.first_name, True)


async def _make_keys(pools: Pools, count: int) -> list[DataKey]:
    keys = []
    async with pools.registry.acquire() as conn:
        for n in range(count):
            key = await vault_store.key_for(conn, pools.master, case_ref(f"eumzug-{n}"))
            assert isinstance(key, DataKey)
            keys.append(key)
    return keys


async def test_data_sealed_before_a_rotation_reads_after_it_and_after_the_old_version_is_retired(
    pools: Pools, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anna = await store(pools, ANNA)
    v1 = pools.master.key_id
    keys_before = await _wrapped_by(pools)
    assert list(keys_before) == [v1]

    code, out, err = await _hub(capsys, "vault", "rotate-master-key")

    assert code == 0, err
    assert f"version 2 now current: {keys_before[v1]} data key(s) re-wrapped" in out
    assert "0 still under older versions" in out
    v2 = load_ring(base).key_id
    assert await _wrapped_by(pools) == {v2: keys_before[v1]}
    assert await _reads(pools, anna) == _readable(anna)  # the service's ring met version 2 and loaded it
    bruno = await store(pools, BRUNO)  # new data: wrapped by the new version
    keys_after = await _wrapped_by(pools)
    assert list(keys_after) == [v2]
    assert keys_after[v2] > keys_before[v1]
    status = await _status(capsys)
    assert {n: (v["state"], v["live"]) for n, v in status.items()} == {
        2: ("current", keys_after[v2]),
        1: ("old", 0),
    }

    code, out, err = await _hub(capsys, "vault", "retire-master-key", "1")

    assert code == 0, err
    assert "kept as" in out
    assert "master.key.retired" in _ring_dir(base)
    assert "master.key" not in _ring_dir(base)
    restarted = dataclasses.replace(pools, master=load_ring(base))  # services started now: no version 1
    assert [v.number for v in restarted.master.versions()] == [2]
    assert await _reads(restarted, anna) == _readable(anna)
    assert await _reads(restarted, bruno) == _readable(bruno)
    # Raw scan: no stored wrapping opens with the retired secret, and none is labelled with it.
    retired = MasterKey(bytes.fromhex(base.with_name("master.key.retired").read_text()))
    assert retired.key_id == v1
    async with pools.registry.acquire() as conn:
        rows = await conn.fetch("SELECT key_id, wrapped, master_key_id FROM vault.data_keys")
    assert rows
    assert all(row["master_key_id"] == v2 for row in rows)
    for row in rows:
        with pytest.raises(TamperedCiphertext):
            retired.unwrap(row["key_id"], bytes(row["wrapped"]))


async def test_an_interrupted_rotation_is_finished_by_the_next_run_while_services_write(
    pools: Pools, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = pools.master  # loaded at start, before the rotation
    old = await _make_keys(pools, 7)
    v1 = service.key_id

    code, out, err = await _hub(capsys, "vault", "rotate-master-key", "--batch-size=2", "--max-batches=1")

    assert code == 1  # not finished: the exit code says so
    assert "2 data key(s) re-wrapped in 1 batch(es), 5 still under older versions" in out
    assert "run `hub vault rotate-master-key` again" in out
    v2 = load_ring(base).key_id
    assert await _wrapped_by(pools) == {v1: 5, v2: 2}
    # Meanwhile the services read keys of both versions and wrap new ones with the new one.
    async with pools.registry.acquire() as conn:
        for key in old:
            assert await vault_store.keys_by_id(conn, service, [key.key_id]) == {key.key_id: key}
        new = await vault_store.key_for(conn, service, case_ref("eumzug-during"))
        assert (
            await conn.fetchval(
                "SELECT master_key_id FROM vault.data_keys WHERE key_id = $1", _live(new).key_id
            )
            == v2
        )
    code, _, err = await _hub(capsys, "vault", "retire-master-key", "1")
    assert code == 1
    assert "version 1 still wraps 5 data key(s)" in err
    assert "master.key" in _ring_dir(base)

    code, out, err = await _hub(capsys, "vault", "rotate-master-key", "--json")

    assert code == 0, err
    resumed = json.loads(out)
    assert (resumed["version"], resumed["started"]) == (2, False)  # no version 3: it finished 2
    assert (resumed["keys"]["rewrapped"], resumed["keys"]["remaining"], resumed["keys"]["finished"]) == (
        5,
        0,
        True,
    )
    assert await _wrapped_by(pools) == {v2: 8}
    assert "master.key.v3" not in _ring_dir(base)
    code, _, err = await _hub(capsys, "vault", "retire-master-key", "1", "--delete")
    assert code == 0, err
    assert _ring_dir(base) == {"master.key.v2", "master.key.index"}
    async with pools.registry.acquire() as conn:
        fresh = load_ring(base)
        for key in old:
            assert await vault_store.keys_by_id(conn, fresh, [key.key_id]) == {key.key_id: key}


async def test_erased_keys_stay_erased_through_a_rotation(
    pools: Pools, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    async with pools.registry.acquire() as conn, conn.transaction():
        destroyed = await vault_store.destroy(conn, refs=[pools.master.subject_ref(anna.person.vn)])
        assert destroyed.keys == 1
        before = await conn.fetch(
            "SELECT key_id, destroyed_at FROM vault.data_keys WHERE destroyed_at IS NOT NULL ORDER BY key_id"
        )

    code, out, err = await _hub(capsys, "vault", "rotate-master-key", "--json")

    assert code == 0, err
    assert json.loads(out)["keys"]["rewrapped"] == 1  # Bruno's; Anna's is not touched
    async with pools.registry.acquire() as conn:
        after = await conn.fetch(
            "SELECT key_id, destroyed_at, wrapped FROM vault.data_keys WHERE key_id = ANY($1::uuid[])",
            [row["key_id"] for row in before],
        )
    assert [(row["key_id"], row["destroyed_at"], row["wrapped"]) for row in after] == [
        (row["key_id"], row["destroyed_at"], None) for row in before
    ]
    assert await _reads(pools, anna) == (ERASED, ERASED, ERASED)
    assert await _reads(pools, bruno) == _readable(bruno)
    status = await _status(capsys)
    assert (status[2]["live"], status[1]["live"], status[1]["destroyed"]) == (1, 0, 1)


async def test_a_prepared_version_unwraps_but_wraps_nothing_until_the_rotation(
    pools: Pools, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = pools.master
    [early] = await _make_keys(pools, 1)

    code, out, err = await _hub(capsys, "vault", "rotate-master-key", "--prepare")

    assert code == 0, err
    assert "version 2 written as pending" in out
    assert "master.key.v2.pending" in _ring_dir(base)
    assert "master.key.index" in _ring_dir(base)  # the blind indexes may outlive version 1
    status = await _status(capsys)
    assert {n: v["state"] for n, v in status.items()} == {1: "current", 2: "pending"}
    service.reload()  # a replica that has loaded the pending version still wraps with 1
    assert [(v.number, v.pending) for v in service.versions()] == [(1, False), (2, True)]
    async with pools.registry.acquire() as conn:
        await vault_store.key_for(conn, service, case_ref("eumzug-prepared"))
    assert set(await _wrapped_by(pools)) == {service.key_id}
    code, _, err = await _hub(capsys, "vault", "rotate-master-key", "--prepare")
    assert code == 1
    assert "pending already" in err

    code, out, err = await _hub(capsys, "vault", "rotate-master-key")

    assert code == 0, err
    assert "version 2 now current: 2 data key(s) re-wrapped" in out
    assert "master.key.v2.pending" not in _ring_dir(base)
    # The replica meets a key wrapped by the version it still thinks pending: it reloads.
    async with pools.registry.acquire() as conn:
        assert await vault_store.keys_by_id(conn, service, [early.key_id]) == {early.key_id: early}
    assert service.version == 2


async def test_a_rotation_with_a_ring_that_is_not_the_services_is_refused(
    pools: Pools,
    base: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _make_keys(pools, 2)
    elsewhere = tmp_path / "elsewhere" / "master.key"
    elsewhere.parent.mkdir()
    elsewhere.write_text(secrets.token_hex(KEY_BYTES))
    monkeypatch.setenv("HUB_MASTER_KEY_FILE", str(elsewhere))

    code, _, err = await _hub(capsys, "vault", "rotate-master-key")

    assert code == 1
    assert "2 data key(s) are wrapped by master keys not in the ring" in err
    assert _ring_dir(elsewhere) == {"master.key"}  # no version, no index written
    assert _ring_dir(base) == {"master.key"}
    code, out, err = await _hub(capsys, "vault", "status")
    assert code == 0, err
    assert f"NOT IN THE RING  {pools.master.key_id}  2 data key(s), 0 destroyed" in out


async def test_rotation_and_writers_at_the_same_time_lose_no_key(pools: Pools, base: Path) -> None:
    await _make_keys(pools, 40)
    ring = load_ring(base)

    async def write(n: int) -> DataKey:
        async with pools.registry.acquire() as conn, conn.transaction():
            key = await vault_store.key_for(conn, pools.master, case_ref(f"eumzug-concurrent-{n}"))
            await vault_store.bind(conn, case_ref(f"eumzug-{n}"), _live(key).key_id)  # merges rings
            return _live(key)

    async def rotate() -> vault_rotate.Rotation:
        async with pools.identity.acquire() as conn:
            return await vault_rotate.rotate_master_key(conn, base, batch_size=3)

    rotating = asyncio.create_task(rotate())
    written = await asyncio.gather(*(write(n) for n in range(20)))
    rotation = await rotating

    assert rotation.started
    assert rotation.keys.rewrapped >= 40
    if not rotation.keys.finished or set(await _wrapped_by(pools)) != {load_ring(base).key_id}:
        # The writers' ring had not reloaded yet (it does so every REFRESH_S): keys they
        # wrapped under the old version, behind the walk or after it ended, are what the
        # next run finishes, without a new version (as `hub vault retire-master-key`
        # demands before it retires the old one).
        async with pools.identity.acquire() as conn:
            again = await vault_rotate.rotate_master_key(conn, base)
        assert again.keys.finished
        assert not again.started
    assert set(await _wrapped_by(pools)) == {load_ring(base).key_id} != {ring.key_id}
    async with pools.registry.acquire() as conn:
        keys = await vault_store.keys_by_id(conn, load_ring(base), [key.key_id for key in written])
    assert keys == {key.key_id: key for key in written}


def _ring_dir(base: Path) -> set[str]:
    return {path.name for path in base.parent.iterdir()}


def _live(key: DataKey | Erased) -> DataKey:
    assert isinstance(key, DataKey)
    return key


async def test_a_rotation_reports_each_batch_it_committed(pools: Pools, base: Path) -> None:
    await _make_keys(pools, 10)
    lines: list[str] = []
    async with pools.identity.acquire() as conn:
        rotation = await vault_rotate.rotate_master_key(conn, base, batch_size=4, progress=lines.append)

    assert rotation.keys.finished
    assert lines[0] == f"master key version {rotation.version} is current; 10 data key(s) to re-wrap under it"
    batches = [line for line in lines if line.startswith("batch ")]
    assert len(batches) == rotation.keys.batches
    assert batches[-1].endswith(f": {rotation.keys.rewrapped} data key(s) re-wrapped so far")
