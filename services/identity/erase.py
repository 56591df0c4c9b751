"""``hub person erase``: crypto-shredding of one person, everywhere in the hub.

The person is found by AHVN13 (``--ahvn13``) or by their citizen id (``--citizen-id``,
the citizen-services pseudonym citizens and operators see). What happens, per store:

* **vault**: every data key of the person's ring is destroyed (``hub.vault.store.destroy``);
* **registry**: their cases' details, pending deliveries and timeline texts (a rejection
  reason, an action asked of them) were sealed under those keys: unreadable from now on;
  a timeline text still in clear (written before migration 0009) is cut to its summary;
* **notifications**: their notices and inbox messages, sealed likewise, are unreadable;
  their channel preference and opt-out (keyed by citizen id, in clear) are deleted;
* **identity**: what could still find them (blind indexes, local ids) is dropped;
* **outbox** (every service): the rows of their cases are deleted, and dead letters of
  their cases purged (``hub.vault.purge``). A row the relay has not published yet is
  waited for (``--wait-relay``, outside the transaction so the relay is never blocked);
  still unpublished after the wait, the erasure is refused and nothing changes, unless
  ``--force`` deletes it (the partner then never receives that event; the count is reported);
* **Kafka**: not reachable record by record; the topics the hub creates expire records
  after ``HUB_KAFKA_RETENTION_HOURS`` (``hub/runtime/topics.py``).

Everything but the wait runs in one transaction: either the person is erased or nothing
changed. Kept on purpose: pseudonyms and case ids (the audit chain and the partners refer
to them; without the identity record they no longer lead to a person), the cases' public
and internal fields (municipalities, dates of processing steps, statuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import TypeAdapter, ValidationError

from contracts import Ahvn13
from hub.cli.database import running_hub
from hub.errors import HubError
from hub.runtime.settings import HubSettings
from hub.vault import store as vault_store
from hub.vault.master import load_master_key
from hub.vault.purge import Purged, purge_case_copies, unpublished_copies
from services import SERVICE_NAMES
from services.erasure import PersonErasure, StoreReport
from services.erasures import other_services
from services.identity.adapters.postgres import IdentityErasure, erasure_connection

# The other services' tables are reached from this one transaction, named with their schema.

if TYPE_CHECKING:
    import asyncpg

    from hub.vault.crypto import MasterKey

_AHVN13: TypeAdapter[str] = TypeAdapter(Ahvn13)
Unpublished = Literal["refuse", "delete"]
POLL_S = 0.2


class NothingToErase(HubError):
    pass


class RelayBacklog(HubError):
    """Outbox rows of the person's cases are not published yet (raised in the erasure's
    transaction, so it rolls back: nothing is erased)."""

    def __init__(self, case_ids: Sequence[str], waiting: dict[str, int]) -> None:
        self.case_ids, self.waiting = tuple(case_ids), waiting
        rows = ", ".join(f"{count} in {schema}" for schema, count in sorted(waiting.items()))
        super().__init__(f"outbox rows of the person's cases are not published yet ({rows})")


@dataclass(frozen=True)
class Erasure:
    persons: int  # identity records erased
    keys: int  # data keys destroyed
    cases: tuple[str, ...]
    outbox_rows: int  # published copies removed
    dead_letters: int  # dead-letter contents purged
    unpublished_outbox_rows: int = 0  # deleted before the relay published them (--force)
    citizen_preferences: int = 0  # channel preferences and opt-outs deleted
    stores: tuple[StoreReport, ...] = ()


def register(person: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erase = person.add_parser(
        "erase", help="destroy a person's data keys: their data becomes unreadable everywhere"
    )
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument("--ahvn13", help="the person's AHVN13 (with or without dots)")
    which.add_argument("--citizen-id", help="the person's citizen id (citizen-services pseudonym)")
    erase.add_argument(
        "--wait-relay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the relays to publish the outbox rows of the person's cases (30)",
    )
    erase.add_argument(
        "--force",
        action="store_true",
        help="after the wait, delete rows still unpublished (their partners never receive them)",
    )
    erase.add_argument("--json", action="store_true", help="print JSON instead of text")
    erase.set_defaults(func=_erase)


Progress = Callable[[str], None]


def _progress(line: str) -> None:
    # On stderr, and never a number that identifies the person: stdout carries the result.
    print(f"· {line}", file=sys.stderr, flush=True)


def _erase(args: argparse.Namespace) -> int:
    vn = None
    if args.ahvn13 is not None:
        try:
            vn = _AHVN13.validate_python(args.ahvn13)
        except ValidationError as error:
            # The message, never the number: it would land in the shell's scrollback twice.
            raise ValueError(f"--ahvn13: {error.errors()[0]['msg']}") from None
    if args.wait_relay < 0:
        raise ValueError("--wait-relay: must not be negative")
    settings = running_hub()
    # The command's own composition root: the vault's master key is loaded here and handed on.
    master = load_master_key(settings, create=False)
    done = asyncio.run(
        _erase_when_published(
            settings,
            master,
            vn=vn,
            citizen_id=args.citizen_id,
            wait_s=args.wait_relay,
            force=args.force,
            progress=_progress,
        )
    )
    kafka = StoreReport(
        "kafka",
        f"not reachable record by record: topics the hub creates expire records after "
        f"{settings.kafka_retention_hours:g} h (HUB_KAFKA_RETENTION_HOURS)",
    )
    done = replace(done, stores=(*done.stores, kafka))
    if args.json:
        print(json.dumps(asdict(done), indent=2))
        return 0
    print(
        f"erased: {done.persons} identity record(s), {done.keys} data key(s) destroyed, "
        f"{len(done.cases)} case(s); {done.outbox_rows} published outbox row(s), "
        f"{done.unpublished_outbox_rows} unpublished outbox row(s) and "
        f"{done.dead_letters} dead letter(s) purged"
    )
    for store in done.stores:
        rows = f" ({store.rows} row(s))" if store.rows is not None else ""
        print(f"  {store.store}: {store.done}{rows}")
    return 0


async def _erase_when_published(
    settings: HubSettings,
    master: MasterKey,
    *,
    vn: str | None,
    citizen_id: str | None,
    wait_s: float,
    force: bool,
    progress: Progress = lambda _line: None,
) -> Erasure:
    """Tries the erasure; while outbox rows of the person's cases wait for their relay, it
    rolls back, waits for them with no transaction open (a relay publishing them must not
    wait for us, nor we for it while holding the person's keys) and tries again."""
    unpublished: Unpublished = "refuse"
    async with erasure_connection(settings) as conn:
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            try:
                async with conn.transaction():
                    return await erase_person(
                        conn, master, vn=vn, citizen_id=citizen_id, unpublished=unpublished, progress=progress
                    )
            except RelayBacklog as backlog:
                progress(
                    f"rolled back, nothing erased yet: {sum(backlog.waiting.values())} outbox row(s) of the "
                    f"person's cases are still to be published; waiting up to {wait_s:g}s for the relays"
                )
                waiting = await _wait_for_relays(conn, backlog.case_ids, deadline)
                if not waiting:
                    continue  # published meanwhile: erase (new rows of new events are checked again)
                if not force:
                    rows = ", ".join(f"{count} in {schema}" for schema, count in sorted(waiting.items()))
                    raise HubError(
                        f"nothing erased: outbox rows of the person's cases are still unpublished after "
                        f"{wait_s:g}s ({rows}); is every service's relay running? Try again, wait longer "
                        "(--wait-relay), or delete them with --force"
                    ) from None
                unpublished = "delete"


async def _wait_for_relays(
    conn: asyncpg.Connection, case_ids: Sequence[str], deadline: float
) -> dict[str, int]:
    """The unpublished rows left once they are all published or the deadline passed."""
    loop = asyncio.get_running_loop()
    while True:
        waiting = await unpublished_copies(conn, SERVICE_NAMES, case_ids)
        if not waiting or loop.time() >= deadline:
            return waiting
        await asyncio.sleep(min(POLL_S, max(deadline - loop.time(), 0)))


async def erase_person(
    conn: asyncpg.Connection,
    master: MasterKey,
    *,
    vn: str | None = None,
    citizen_id: str | None = None,
    unpublished: Unpublished = "refuse",
    progress: Progress = lambda _line: None,
) -> Erasure:
    """In the caller's transaction, on a connection whose search path is identity's schema.

    Raises ``NothingToErase`` if neither identity nor the vault knows the person (never
    stored, or erased already: erasure leaves nothing to recognise them by), and
    ``RelayBacklog`` if outbox rows of their cases are unpublished and ``unpublished`` is
    "refuse" (the caller's transaction must then roll back); "delete" deletes them.
    """
    identity = IdentityErasure(conn, master)
    services: tuple[PersonErasure, ...] = (identity, *other_services(conn))
    subject = await identity.locate(vn=vn, citizen_id=citizen_id)
    destroyed = await vault_store.destroy(conn, refs=subject.refs, key_ids=subject.key_ids)
    if not subject.person_ids and destroyed.keys == 0:
        raise NothingToErase("no such person is stored in the hub (never, or erased already)")
    cases = list(destroyed.case_ids)
    progress(
        f"located {len(subject.person_ids)} identity record(s); destroying {destroyed.keys} data key(s), "
        f"{len(cases)} case(s) concerned (all of it commits at the end, or nothing)"
    )
    # A case's citizen id reaches data identity no longer links to the person.
    citizen_ids = set(subject.citizen_ids)
    for service in services:
        citizen_ids |= await service.citizen_ids_of_cases(cases)
    reports = []
    for service in services:
        erased = await service.erase(case_ids=cases, citizen_ids=citizen_ids)
        reports += erased
        progress(f"erasing in {', '.join(report.store for report in erased) or 'nothing stored'}")
    purged = await purge_case_copies(conn, SERVICE_NAMES, cases, unpublished=unpublished == "delete")
    progress(
        f"purging copies: {sum(purged.outbox_rows.values())} published outbox row(s), "
        f"{sum(purged.dead_letters.values())} dead letter(s)"
    )
    if unpublished == "refuse" and (waiting := await unpublished_copies(conn, SERVICE_NAMES, cases)):
        raise RelayBacklog(cases, waiting)
    return Erasure(
        persons=len(subject.person_ids),
        keys=destroyed.keys,
        cases=destroyed.case_ids,
        outbox_rows=sum(purged.outbox_rows.values()),
        dead_letters=sum(purged.dead_letters.values()),
        unpublished_outbox_rows=sum(purged.unpublished_rows.values()),
        citizen_preferences=sum(r.rows or 0 for r in reports if r.store == PREFERENCES_STORE),
        stores=(
            StoreReport("vault.data_keys", "destroyed", destroyed.keys),
            *reports,
            *_purge_reports(purged),
        ),
    )


PREFERENCES_STORE = "notifications.citizen_preferences"


def _purge_reports(purged: Purged) -> list[StoreReport]:
    reports = []
    for schema in SERVICE_NAMES:
        reports.append(
            StoreReport(f"{schema}.outbox", "published copies deleted", purged.outbox_rows.get(schema, 0))
        )
        if schema in purged.unpublished_rows:
            reports.append(
                StoreReport(
                    f"{schema}.outbox", "unpublished rows deleted (--force)", purged.unpublished_rows[schema]
                )
            )
        reports.append(
            StoreReport(f"{schema}.dead_letters", "contents purged", purged.dead_letters.get(schema, 0))
        )
    return reports
