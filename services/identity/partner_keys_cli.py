"""``hub partner key add|revoke|list``: partners' signing keys.

Adding and revoking travel as commands on ``hub.admin`` like every partner change (the
identity service validates, stores and announces them; the registry mirrors them);
listing reads identity's table. Only public keys ever reach the hub.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from hub.cli.admin_wait import add_wait_options
from hub.cli.output import print_rows
from hub.errors import HubError
from hub.security.key_files import load_public_key
from hub.security.signing import encode_public_key
from services.identity.cli_common import checked_partner_id, contract, in_identity_schema, send


def register(partner: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = partner.add_parser("key", help="partners' signing keys (rotation, revocation)").add_subparsers(
        dest="partner_key_command", required=True
    )
    add = key.add_parser("add", help="register a public key a partner signs its events with")
    add.add_argument("--partner", required=True, help="e.g. CH/MUN/1061/einwohnerdienste")
    add.add_argument("--key-id", required=True, help="unique across the hub, e.g. lu-1061-2026a")
    add.add_argument("--public-key", required=True, type=Path, help="Ed25519 public key: PEM or base64 file")
    add.add_argument("--valid-from", type=_timestamp, help="ISO 8601 with offset; default: now")
    add.add_argument("--valid-until", type=_timestamp, help="ISO 8601 with offset; default: until revoked")
    add_wait_options(add)
    add.set_defaults(func=_add)
    revoke = key.add_parser("revoke", help="withdraw a key at once; its events are refused from now on")
    revoke.add_argument("--partner", required=True, help="the partner id the key belongs to")
    revoke.add_argument("--key-id", required=True, help="the key id, from hub partner key list")
    revoke.add_argument("--reason", help="why, e.g. leaked; kept with the revocation")
    add_wait_options(revoke)
    revoke.set_defaults(func=_revoke)
    listing = key.add_parser("list", help="every key, its window and whether it was revoked")
    listing.add_argument("--partner", help="only this partner's keys (all by default)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=_list)


def _timestamp(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset, e.g. 2026-01-31T00:00:00+01:00")
    return moment


def _add(args: argparse.Namespace) -> int:
    partner_id = checked_partner_id(args.partner)
    try:
        public_key = encode_public_key(load_public_key(args.public_key))
    except (OSError, ValueError) as error:
        raise HubError(f"cannot read an Ed25519 public key from {args.public_key}: {error}") from None
    command = contract(
        RegisterPartnerKey,
        partner_id=partner_id,
        key_id=args.key_id,
        public_key=public_key,
        valid_from=args.valid_from,
        valid_until=args.valid_until,
    )
    return send(command, partner_id, args)


def _revoke(args: argparse.Namespace) -> int:
    partner_id = checked_partner_id(args.partner)
    # Checked here for a clear answer; the service checks again.
    stored = in_identity_schema(lambda stores: stores.partner_keys.get(args.key_id))
    if stored is None or stored.partner_id != partner_id:
        raise HubError(f"{partner_id} has no key {args.key_id}")
    command = contract(RevokePartnerKey, partner_id=partner_id, key_id=args.key_id, reason=args.reason)
    return send(command, partner_id, args)


def _list(args: argparse.Namespace) -> int:
    partner_id = checked_partner_id(args.partner) if args.partner else None
    rows = in_identity_schema(lambda stores: stores.partner_keys.listing(partner_id))
    now = dt.datetime.now(dt.UTC)
    print_rows(
        rows,
        as_json=args.json,
        line=lambda row: (
            f"{row['partner_id']}  {row['key_id']}  {_state(row, now)}  {row['valid_from'].isoformat()}"
            f"..{row['valid_until'].isoformat() if row['valid_until'] else ''}"
        ),
    )
    return 0


def _state(row: dict[str, object], now: dt.datetime) -> str:
    revoked_at, valid_from, valid_until = row["revoked_at"], row["valid_from"], row["valid_until"]
    assert isinstance(valid_from, dt.datetime)
    if revoked_at is not None:
        return "revoked"
    if now < valid_from:
        return "not-yet-valid"
    if isinstance(valid_until, dt.datetime) and now >= valid_until:
        return "expired"
    return "valid"
