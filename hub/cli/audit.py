"""``hub audit verify|subject|refusals``: checking the chain, access requests, refused events.

All read the registry's schema, where the audit log lives. ``verify`` needs the chain's
key file (the same one the registry seals with); ``subject`` and ``refusals`` only read.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from pydantic import TypeAdapter, ValidationError

from contracts import Ahvn13
from contracts.audit import AuditHeadAnchored
from hub.audit import store as audit_store
from hub.audit.anchor import latest_anchor
from hub.audit.chain import SealedEntry, Verdict
from hub.audit.key import load_audit_key
from hub.cli.database import database_settings, run_on_database
from hub.cli.output import print_json, print_rows
from hub.errors import HubError
from hub.runtime.settings import HubSettings
from hub.security.key_files import (
    HUB_KEY_PREFIX,
    derived_key_id,
    hub_key_path,
    hub_signing_key,
    load_public_key,
)
from hub.security.signing import PublicKey

T = TypeVar("T")
AUDIT_SCHEMA = "registry"  # the registry routes and discloses, so the log is in its schema
IDENTITY_SCHEMA = "identity"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the audit log of routing decisions and disclosures")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser("verify", help="check every entry's seal and the chain; exit 1 at a break")
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a seal noted earlier (e.g. from --json); catches entries cut off the end; repeat",
    )
    verify.add_argument(
        "--no-published-anchor",
        action="store_true",
        help="do not read the latest head the registry published on hub.audit.heads (read by default)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON instead of text")
    verify.set_defaults(func=_verify)
    subject = sub.add_parser("subject", help="every disclosure of one citizen's data (access request)")
    whom = subject.add_mutually_exclusive_group(required=True)
    whom.add_argument("--citizen-id", help="the citizen-services pseudonym, e.g. from the case")
    whom.add_argument("--case", dest="case_id", help="a case id (business process id)")
    whom.add_argument("--ahvn13", help="resolved to the citizen id by identity; never printed")
    subject.add_argument("--json", action="store_true", help="print JSON instead of text")
    subject.set_defaults(func=_subject)
    refusals = sub.add_parser("refusals", help="partner events refused at ingress, newest first, with why")
    refusals.add_argument("--partner", help="only events claiming to come from this partner id")
    refusals.add_argument("--since", type=_moment, help="ISO time, e.g. 2026-11-26T08:00:00+01:00")
    refusals.add_argument("--until", type=_moment, help="ISO time (exclusive)")
    refusals.add_argument("--limit", type=int, default=100, help="at most this many, newest first (100)")
    refusals.add_argument("--json", action="store_true", help="print JSON instead of text")
    refusals.set_defaults(func=_refusals)


def _verify(args: argparse.Namespace) -> int:
    anchors = dict(_anchor(value) for value in args.anchor)
    settings = database_settings()
    key = load_audit_key(settings, create=False)
    if not args.no_published_anchor:
        published = _published_anchor(settings)
        if published is not None:
            anchors.setdefault(published.seq, published.entry_hash)
            if not args.json:
                when = published.anchored_at.isoformat(timespec="seconds")
                print(f"published anchor: entry {published.seq} at {when}")
    verdict = _in_schema(settings, AUDIT_SCHEMA, lambda conn: audit_store.verify(conn, key, anchors=anchors))
    if args.json:
        print_json(_verdict_json(verdict))
    elif verdict.broken is None:
        print(f"{verdict.entries} entries, chain intact (head {verdict.head_seq} {verdict.head_hash})")
    else:
        broken = verdict.broken
        print(f"audit chain broken at entry {broken.seq} ({broken.problem.value}): {broken.detail}")
    return 0 if verdict.intact else 1


def _published_anchor(settings: HubSettings) -> AuditHeadAnchored | None:
    """The furthest head the registry published and the hub's key signed, if Kafka is known."""
    if settings.kafka_bootstrap_servers is None:
        return None
    path = hub_key_path(settings)
    public_file = path.with_name(path.name + ".pub")
    if public_file.exists():
        public = load_public_key(public_file)
        hub_key = PublicKey(derived_key_id(public, HUB_KEY_PREFIX), public)
    elif path.exists():
        hub_key = hub_signing_key(settings).public
    else:
        raise HubError(f"no hub key at {path} (or {public_file}) to check the published anchors with")
    return asyncio.run(latest_anchor(settings, hub_key))


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    result: dict[str, Any] = {
        "intact": verdict.intact,
        "entries": verdict.entries,
        "head": {"seq": verdict.head_seq, "hash": verdict.head_hash},
    }
    if verdict.broken is not None:
        result["broken"] = {
            "seq": verdict.broken.seq,
            "problem": verdict.broken.problem.value,
            "detail": verdict.broken.detail,
        }
    return result


def _anchor(value: str) -> tuple[int, str]:
    seq, _, seal = value.partition(":")
    if not seq.isdigit() or len(seal) != 64:
        raise ValueError(f"--anchor {value!r}: expected SEQ:HASH, e.g. 42:<64 hex digits>")
    return int(seq), seal.lower()


def _subject(args: argparse.Namespace) -> int:
    settings = database_settings()
    citizen_id = args.citizen_id
    if args.ahvn13 is not None:
        citizen_id = _citizen_id_of(settings, args.ahvn13)

    found = _in_schema(
        settings,
        AUDIT_SCHEMA,
        lambda conn: audit_store.disclosures(conn, citizen_id=citizen_id, case_id=args.case_id),
    )
    shared = _entries_per_delivery(found)
    print_rows(
        found,
        as_json=args.json,
        line=lambda sealed: _disclosure_text(sealed, shared),
        jsonable=_disclosure_json,
        empty="no disclosures recorded",
    )
    return 0


def _entries_per_delivery(found: list[SealedEntry]) -> dict[str, list[int]]:
    """A delivery made under several subscriptions (a partner filling several slots of the
    case) has one entry per subscription: the positions of each delivery's entries."""
    entries: dict[str, list[int]] = {}
    for sealed in found:
        if sealed.entry.delivery_event_id is not None:
            entries.setdefault(sealed.entry.delivery_event_id, []).append(sealed.seq)
    return entries


def _disclosure_text(sealed: SealedEntry, shared: dict[str, list[int]]) -> str:
    e = sealed.entry
    entries = shared.get(e.delivery_event_id or "", [])
    together = (
        f"\n  one delivery under {len(entries)} subscriptions: entries {', '.join(map(str, entries))}"
        if len(entries) > 1
        else ""
    )
    return (
        f"{sealed.recorded_at.isoformat(timespec='seconds')}  {e.partner_id}  {e.event_type}\n"
        f"  fields: {', '.join(e.fields)}\n"
        f"  legal basis: {e.legal_basis}; purpose: {e.purpose}\n"
        f"  received as: {e.basis or 'not recorded'}\n"
        f"  case {e.case_id}, trace {e.trace_id}, delivery {e.delivery_event_id}, entry {sealed.seq}"
        f"{together}"
    )


def _disclosure_json(sealed: SealedEntry) -> dict[str, Any]:
    e = sealed.entry
    return {
        "seq": sealed.seq,
        "recorded_at": sealed.recorded_at.isoformat(),
        "partner_id": e.partner_id,
        "sector": e.sector,
        "event_type": e.event_type,
        "event_id": e.event_id,
        "delivery_event_id": e.delivery_event_id,
        "fields": list(e.fields),
        "person_pseudonym": e.person_pseudonym,
        "citizen_id": e.citizen_id,
        "legal_basis": e.legal_basis,
        "purpose": e.purpose,
        "basis": e.basis,
        "case_id": e.case_id,
        "trace_id": e.trace_id,
    }


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    # A time without zone would be read in the database's zone: say which one is meant.
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. +01:00 or Z")
    return moment


def _refusals(args: argparse.Namespace) -> int:
    found = _in_schema(
        database_settings(),
        AUDIT_SCHEMA,
        lambda conn: audit_store.refusals(
            conn, partner_id=args.partner, since=args.since, until=args.until, limit=args.limit
        ),
    )
    print_rows(
        found, as_json=args.json, line=_refusal_text, jsonable=_refusal_json, empty="no refusals recorded"
    )
    return 0


def _refusal_text(sealed: SealedEntry) -> str:
    e = sealed.entry
    claim = "signature verified" if e.sender_verified else "not proven"
    return (
        f"{sealed.recorded_at.isoformat(timespec='seconds')}  {e.partner_id} ({claim})  {e.event_type}\n"
        f"  {e.reason_class}: {e.reason}\n"
        f"  event {e.event_id}, case {e.case_id}, trace {e.trace_id}, entry {sealed.seq}"
    )


def _refusal_json(sealed: SealedEntry) -> dict[str, Any]:
    e = sealed.entry
    return {
        "seq": sealed.seq,
        "recorded_at": sealed.recorded_at.isoformat(),
        "partner_id": e.partner_id,
        "sender_verified": e.sender_verified,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "case_id": e.case_id,
        "reason_class": e.reason_class,
        "reason": e.reason,
        "trace_id": e.trace_id,
    }


def _citizen_id_of(settings: HubSettings, ahvn13: str) -> str:
    """Identity's own lookups: the AHVN13 stays in identity's tables and is never echoed.
    It is found through its blind index, so this takes the vault's master key."""
    from hub.vault.master import load_master_key
    from services.identity.adapters.postgres import PostgresRepositories
    from services.identity.domain import CITIZEN_SECTOR

    try:
        vn = TypeAdapter(Ahvn13).validate_python(ahvn13)
    except ValidationError:
        raise ValueError("--ahvn13 is not a valid AHVN13") from None
    master = load_master_key(settings, create=False)

    async def lookup(conn: asyncpg.Connection) -> str | None:
        identity = PostgresRepositories(conn, master)
        person_id = await identity.persons.by_vn(vn)
        if person_id is None:
            return None
        return await identity.pseudonyms.issued(person_id, CITIZEN_SECTOR)

    citizen_id = _in_schema(settings, IDENTITY_SCHEMA, lookup)
    if citizen_id is None:
        raise HubError("identity has issued no citizen id for that AHVN13")
    return citizen_id


def _in_schema(settings: HubSettings, schema: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_on_database(
        settings,
        work,
        schema=schema,
        no_tables=f"no {schema} tables in this database; start the hub once (`hub up`)",
    )
