"""``hub person erase``: crypto-shredding of one person, everywhere in the hub.

The person is found by AHVN13 (``--ahvn13``) or by their citizen id (``--citizen-id``,
the citizen-services pseudonym citizens and operators see). Every data key of the
person's ring is destroyed (``hub.vault_store.destroy``): their case details and pending
deliveries (registry), notices and inbox (notifications) and identity record become
unreadable in every service at once, while everyone else's data stays readable.
Identity then drops what could still find the person (blind indexes, local ids), and
the published outbox copies and dead letters of their cases are purged
(``hub.vault_purge``). It all runs in one transaction: either the person is erased or
nothing changed.

Kept on purpose: pseudonyms and case ids (the audit chain and the partners refer to
them; without the identity record they no longer lead to a person), the cases' public
and internal fields (municipalities, dates of processing steps, statuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from dataclasses import asdict, dataclass

import asyncpg
from pydantic import TypeAdapter, ValidationError

from contracts import Ahvn13
from hub import vault_store
from hub.endpoints import running_hub_settings
from hub.errors import HubError
from hub.messages import Transaction
from hub.settings import HubSettings
from hub.vault import Erased, citizen_ref
from hub.vault_master import installed, installed_as, load_master_key
from hub.vault_purge import purge_case_copies
from services import SERVICE_NAMES
from services.identity import repository as repo
from services.identity.domain import ADMIN_CLI_SOURCE

_AHVN13: TypeAdapter[str] = TypeAdapter(Ahvn13)


class NothingToErase(HubError):
    pass


@dataclass(frozen=True)
class Erasure:
    persons: int  # identity records erased
    keys: int  # data keys destroyed
    cases: tuple[str, ...]
    outbox_rows: int  # published copies removed
    dead_letters: int  # dead-letter contents purged


def register(person: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erase = person.add_parser(
        "erase", help="destroy a person's data keys: their data becomes unreadable everywhere"
    )
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument("--ahvn13", help="the person's AHVN13 (with or without dots)")
    which.add_argument("--citizen-id", help="the person's citizen id (citizen-services pseudonym)")
    erase.add_argument("--json", action="store_true")
    erase.set_defaults(func=_erase)


def _erase(args: argparse.Namespace) -> int:
    vn = None
    if args.ahvn13 is not None:
        try:
            vn = _AHVN13.validate_python(args.ahvn13)
        except ValidationError as error:
            # The message, never the number: it would land in the shell's scrollback twice.
            raise ValueError(f"--ahvn13: {error.errors()[0]['msg']}") from None
    settings = running_hub_settings(HubSettings())
    with installed_as(load_master_key(settings, create=False)):
        done = asyncio.run(_in_transaction(settings, vn=vn, citizen_id=args.citizen_id))
    if args.json:
        print(json.dumps(asdict(done), indent=2))
    else:
        print(
            f"erased: {done.persons} identity record(s), {done.keys} data key(s) destroyed, "
            f"{len(done.cases)} case(s); {done.outbox_rows} published outbox row(s) and "
            f"{done.dead_letters} dead letter(s) purged"
        )
    return 0


async def _in_transaction(settings: HubSettings, *, vn: str | None, citizen_id: str | None) -> Erasure:
    from services.identity.bootstrap import NAME

    conn = await asyncpg.connect(settings.database_dsn(), server_settings={"search_path": f'"{NAME}"'})
    try:
        async with conn.transaction():
            return await erase_person(conn, vn=vn, citizen_id=citizen_id)
    except asyncpg.UndefinedTableError:
        raise HubError("the hub's services have not created their tables in this database") from None
    finally:
        await conn.close()


async def erase_person(
    conn: asyncpg.Connection, *, vn: str | None = None, citizen_id: str | None = None
) -> Erasure:
    """In the caller's transaction, on a connection whose search path is identity's schema.

    Raises ``NothingToErase`` if neither identity nor the vault knows the person (never
    stored, or erased already: erasure leaves nothing to recognise them by).
    """
    tx = Transaction(conn, source=ADMIN_CLI_SOURCE)
    master = installed()
    refs: list[str] = []
    person_ids: set[uuid.UUID] = set()
    if vn is not None:
        # Also reaches cases identity has not seen yet: the registry keyed them by this reference.
        refs.append(master.subject_ref(vn))
        if (found := await repo.person_by_vn(tx, vn)) is not None:
            person_ids.add(found)
    if citizen_id is not None:
        refs.append(citizen_ref(citizen_id))
        if (found := await repo.person_by_citizen_id(conn, citizen_id)) is not None:
            person_ids.add(found)
    key_ids: list[uuid.UUID] = []
    for person_id in person_ids:
        refs += [citizen_ref(c) for c in await repo.citizen_ids_of(conn, person_id)]
        if (person_vn := await _vn(tx, person_id)) is not None:
            refs.append(master.subject_ref(person_vn))
        if (
            key_id := await conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
        ) is not None:
            key_ids.append(key_id)
    destroyed = await vault_store.destroy(conn, refs=refs, key_ids=key_ids)
    if not person_ids and destroyed.keys == 0:
        raise NothingToErase("no such person is stored in the hub (never, or erased already)")
    for person_id in person_ids:
        await repo.forget(conn, person_id)
    purged = await purge_case_copies(conn, SERVICE_NAMES, destroyed.case_ids)
    return Erasure(
        len(person_ids), destroyed.keys, destroyed.case_ids, purged.outbox_rows, purged.dead_letters
    )


async def _vn(tx: Transaction, person_id: uuid.UUID) -> str | None:
    """The AHVN13 the person's subject reference derives from, read before the key goes."""
    record = await repo.person_record(tx, person_id)
    if isinstance(record, dict):
        vn: str = record["vn"]
        return vn
    if isinstance(record, Erased):
        return None
    legacy: str | None = await tx.conn.fetchval("SELECT vn FROM persons WHERE person_id = $1", person_id)
    return legacy
