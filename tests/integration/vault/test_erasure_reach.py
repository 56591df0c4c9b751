"""What `hub person erase` reaches beyond the sealed columns: timeline texts, channel
preferences and outbox rows the relay has not published yet.

Two citizens are stored by the three services (``support.py``). A partner's words about a
person on the case timeline (a rejection reason, an action asked of them) are sealed under
the person's key; their preference rows are deleted; an outbox row of their cases that
waits for its relay makes the erasure wait, then refuse (nothing changed) or, forced,
delete it. The other citizen's data stays as it was throughout.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from contracts import Channel
from hub.cli.casefile import SEALED_TEXT, load_case_view
from hub.cli.main import main
from hub.runtime.kafka import ensure_topics
from hub.runtime.outbox import OutboxRelay
from hub.runtime.publisher import KafkaPublisher
from hub.runtime.settings import HubSettings
from hub.vault.crypto import ERASED_TEXT, MasterKey
from services.identity.erase import Erasure, RelayBacklog, erase_person
from services.registry.model import TimelineStep
from tests.fixtures.infrastructure import point_cli_at
from tests.fixtures.registry import registry_unit_of_work
from tests.integration.notifications.conftest import units as notifications_units
from tests.integration.vault.scan import hits, readable_rows, relation_files
from tests.integration.vault.support import ANNA, BRUNO, Citizen, Pools, published, store

pytestmark = pytest.mark.asyncio
LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"


def _reason(citizen: Citizen) -> str:
    return f"Die Wohnung an der {citizen.report.new_address.street} ist nicht bewohnbar."


def _action(citizen: Citizen) -> str:
    return f"Bitte laden Sie den Mietvertrag von {citizen.person.first_name} hoch."


async def _rejected(pools: Pools, citizen: Citizen) -> None:
    """The timeline steps ``handlers.request_action`` and ``handlers.reject_case`` write."""
    async with pools.registry.acquire() as conn, conn.transaction():
        timeline = registry_unit_of_work(conn, pools.master).timeline
        for event_type, summary, text in (
            ("ch.lu.hub.case.action-required.v1", "action required", _action(citizen)),
            ("ch.lu.hub.case.rejected.v1", "rejected", _reason(citizen)),
        ):
            await timeline.add(
                TimelineStep(
                    case_id=citizen.case_id,
                    service=LUCERNE_OFFICE,
                    event_type=event_type,
                    event_id=f"{citizen.case_id}:{summary}",
                    trace_id="0" * 32,
                    detail=summary,
                    confidential=text,
                )
            )


async def _details(pools: Pools, citizen: Citizen, master: MasterKey | None) -> list[str]:
    """The office's timeline texts as a reader with ``master`` sees them (None: no key)."""
    async with pools.registry.acquire() as conn:
        view = await load_case_view(conn, citizen.case_id, master=master)
    assert view is not None
    return [step.detail or "" for step in view.timeline if step.service == LUCERNE_OFFICE]


async def _erase(pools: Pools, *, vn: str, progress: list[str] | None = None) -> Erasure:
    async with pools.identity.acquire() as conn, conn.transaction():
        if progress is None:
            return await erase_person(conn, pools.master, vn=vn)
        return await erase_person(conn, pools.master, vn=vn, progress=progress.append)


async def test_timeline_texts_about_a_person_are_sealed_and_erased_with_them(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    await _rejected(pools, anna)
    await _rejected(pools, bruno)
    texts = (_reason(anna), _action(anna), _reason(bruno), _action(bruno))
    async with pools.registry.acquire() as conn:
        # Sealed: not in any row as read, nor in the files on disk.
        assert hits(await readable_rows(conn), texts) == []
        assert hits(await relation_files(conn, ("registry",)), texts) == []
    # Readers with the master key see the text; without it, that it is sealed.
    assert await _details(pools, anna, pools.master) == [
        f"action required: {_action(anna)}",
        f"rejected: {_reason(anna)}",
    ]
    assert await _details(pools, bruno, None) == [
        f"action required: {SEALED_TEXT}",
        f"rejected: {SEALED_TEXT}",
    ]

    await published(pools)
    progress: list[str] = []
    erasure = await _erase(pools, vn=anna.person.vn, progress=progress)

    stores = {(s.store, s.done): s.rows for s in erasure.stores}
    assert stores[("registry.timeline", "unreadable (sealed under a destroyed key)")] == 2
    # Each step as it is done, and nothing that names the person.
    assert progress[0].startswith(f"located {erasure.persons} identity record(s); destroying {erasure.keys} ")
    assert any(line.startswith("erasing in ") and "registry.timeline" in line for line in progress)
    assert progress[-1].startswith("purging copies: ")
    assert not any(anna.person.vn in line for line in progress)
    assert await _details(pools, anna, pools.master) == [
        f"action required: {ERASED_TEXT}",
        f"rejected: {ERASED_TEXT}",
    ]
    assert await _details(pools, bruno, pools.master) == [
        f"action required: {_action(bruno)}",
        f"rejected: {_reason(bruno)}",
    ]
    async with pools.registry.acquire() as conn:
        assert hits(await readable_rows(conn), texts) == []


async def test_the_persons_channel_preferences_are_deleted_and_the_others_stay(pools: Pools) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    async with notifications_units(pools.notifications, pools.master).begin() as uow:
        for citizen in (anna, bruno):
            await uow.preferences.prefer_channel(citizen.citizen_id, Channel.INBOX)
            await uow.preferences.set_opted_out(citizen.citizen_id, True)
    await published(pools)

    erasure = await _erase(pools, vn=anna.person.vn)

    assert erasure.citizen_preferences == 1
    assert {(s.store, s.done): s.rows for s in erasure.stores}[
        ("notifications.citizen_preferences", "deleted")
    ] == 1
    async with notifications_units(pools.notifications, pools.master).begin() as uow:
        assert await uow.preferences.preference_of(anna.citizen_id) is None
        kept = await uow.preferences.preference_of(bruno.citizen_id)
    assert kept is not None
    assert (kept.channel, kept.opted_out) == (Channel.INBOX, True)


async def _unpublished(pools: Pools, citizen: Citizen) -> dict[str, int]:
    found = {}
    for schema, pool in (("identity", pools.identity), ("notifications", pools.notifications)):
        async with pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE aggregateid = $1 AND published_at IS NULL", citizen.case_id
            )
        if count:
            found[schema] = count
    return found


async def _case_erased(pools: Pools, citizen: Citizen) -> bool:
    async with pools.registry.acquire() as conn:
        case = await registry_unit_of_work(conn, pools.master).cases.get(citizen.case_id)
    assert case is not None
    return case.erased


async def test_unpublished_rows_refuse_the_erasure_and_nothing_changes_unless_they_are_deleted(
    pools: Pools,
) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    waiting = await _unpublished(pools, anna)
    assert waiting  # identity's answer and the notice's status events, no relay ran
    bruno_waiting = await _unpublished(pools, bruno)

    with pytest.raises(RelayBacklog) as refused:
        await _erase(pools, vn=anna.person.vn)

    assert refused.value.waiting == waiting
    assert refused.value.case_ids == (anna.case_id,)
    assert not await _case_erased(pools, anna)  # rolled back: the key is intact
    assert await _unpublished(pools, anna) == waiting

    async with pools.identity.acquire() as conn, conn.transaction():
        erasure = await erase_person(conn, pools.master, vn=anna.person.vn, unpublished="delete")

    assert erasure.unpublished_outbox_rows == sum(waiting.values())
    assert await _case_erased(pools, anna)
    assert await _unpublished(pools, anna) == {}
    assert await _unpublished(pools, bruno) == bruno_waiting  # not his erasure


@pytest.fixture
def operator(
    hub_settings: HubSettings, vault_master_key_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An operator's shell on this database, with the master key the services' code here was
    given (``Pools.master``) as the ring HUB_MASTER_KEY_FILE names."""
    point_cli_at(hub_settings, monkeypatch, tmp_path)
    monkeypatch.setenv("HUB_MASTER_KEY_FILE", str(vault_master_key_file))


def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_command_refuses_after_its_wait_and_changes_nothing(
    pools: Pools, operator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    anna = await store(pools, ANNA)
    waiting = await _unpublished(pools, anna)

    code, out, err = await asyncio.to_thread(
        _hub, capsys, "person", "erase", "--ahvn13", anna.person.vn, "--wait-relay", "0.5"
    )

    assert (code, out) == (1, "")
    *steps, last = err.splitlines()
    assert last.startswith("hub: error: nothing erased: outbox rows of the person's cases are still")
    assert any(step.startswith("· rolled back, nothing erased yet: ") for step in steps)
    assert f"{waiting['identity']} in identity" in err
    assert "--force" in err
    assert not await _case_erased(pools, anna)
    assert await _unpublished(pools, anna) == waiting


async def test_the_command_waits_for_the_relays_then_deletes_what_they_published(
    pools: Pools, operator: None, hub_settings: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna = await store(pools, ANNA)
    waiting = await _unpublished(pools, anna)

    erasing = asyncio.create_task(
        asyncio.to_thread(
            _hub, capsys, "person", "erase", "--ahvn13", anna.person.vn, "--wait-relay", "60", "--json"
        )
    )
    await asyncio.sleep(1.0)
    assert not erasing.done()  # it waits for the relays
    await _relays_publish(pools, hub_settings)
    code, out, err = await asyncio.wait_for(erasing, 30)

    assert code == 0, err
    erasure = json.loads(out)
    assert erasure["unpublished_outbox_rows"] == 0
    assert erasure["outbox_rows"] >= sum(waiting.values())
    assert await _case_erased(pools, anna)
    for pool in (pools.identity, pools.notifications):
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM outbox WHERE aggregateid = $1", anna.case_id)
            assert left == 0
    stores = {(s["store"], s["done"]): s["rows"] for s in erasure["stores"]}
    assert stores[("identity.outbox", "published copies deleted")] == waiting["identity"]
    assert stores[("vault.data_keys", "destroyed")] == 1
    assert any(store == "kafka" and "HUB_KAFKA_RETENTION_HOURS" in done for store, done in stores)


async def test_forced_the_command_deletes_unpublished_rows_and_says_so_per_store(
    pools: Pools, operator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, bruno = await store(pools, ANNA), await store(pools, BRUNO)
    waiting, bruno_waiting = await _unpublished(pools, anna), await _unpublished(pools, bruno)

    code, out, err = await asyncio.to_thread(
        _hub, capsys, "person", "erase", "--ahvn13", anna.person.vn, "--wait-relay", "0", "--force"
    )

    assert code == 0, err
    lines = out.splitlines()
    assert f"{sum(waiting.values())} unpublished outbox row(s)" in lines[0]
    assert f"  identity.outbox: unpublished rows deleted (--force) ({waiting['identity']} row(s))" in lines
    assert "  notifications.citizen_preferences: deleted (0 row(s))" in lines
    assert any(line.startswith("  kafka: not reachable record by record") for line in lines)
    assert anna.person.vn not in out
    assert await _case_erased(pools, anna)
    assert await _unpublished(pools, anna) == {}
    assert await _unpublished(pools, bruno) == bruno_waiting


async def _relays_publish(pools: Pools, settings: HubSettings) -> None:
    """Each service's relay publishes its backlog to the broker, as a running service does."""
    publisher = KafkaPublisher(settings, client_id="test-relay")
    await publisher.start()
    try:
        for schema, pool in (
            ("registry", pools.registry),
            ("identity", pools.identity),
            ("notifications", pools.notifications),
        ):
            async with pool.acquire() as conn:
                topics = [r["topic"] for r in await conn.fetch("SELECT DISTINCT topic FROM outbox")]
            await ensure_topics(settings, topics)
            relay = OutboxRelay(pool, publisher, schema=schema, batch_size=100, poll_interval_s=0.1)
            while await relay.publish_batch():
                pass
    finally:
        await publisher.stop()
