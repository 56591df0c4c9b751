"""Identity commands: ``hub partner …``, ``hub person reviews``, ``hub identity rotate-key``.

Partner changes travel as commands on ``hub.admin`` (the service validates, stores and
announces them); listings and key rotation work on identity's tables directly.
"""

from __future__ import annotations

import argparse
from typing import Any

from contracts import Jurisdiction, Sector
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerStatus
from hub.cli.admin_wait import add_wait_options
from hub.cli.output import print_rows
from hub.errors import HubError
from services.identity import erase, partner_keys_cli
from services.identity.cli_common import checked_partner_id, contract, in_identity_schema, send
from services.identity.domain import OPERATIONS_ROLE

SECTORS = [sector.value for sector in Sector]
# Partners that fill no case slot and only read across all cases (statistics offices).
READING_ROLES = ("statistics",)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    partner = commands.add_parser("partner", help="the partner register (who is who)").add_subparsers(
        dest="partner_command", required=True
    )
    add = partner.add_parser("register", help="register or update a partner (via hub.admin)")
    add.add_argument("--id", dest="partner_id", required=True, help="e.g. CH/MUN/1061/einwohnerdienste")
    add.add_argument("--name", required=True, help="the agency's name as people know it")
    add.add_argument(
        "--sector",
        required=True,
        choices=SECTORS,
        metavar="SECTOR",
        help=f"the sector its pseudonyms belong to, one of: {', '.join(SECTORS)}",
    )
    add.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        type=known_role,
        metavar="ROLE",
        help=f"what the partner does, one of: {', '.join(known_roles())}; repeat for several",
    )
    add.add_argument("--sedex-id", help="its sedex participant id, if it has one")
    add.add_argument("--local-id-category", help="the eCH-0044 personIdCategory it uses, e.g. CH.LU.1061")
    where = add.add_argument_group(
        "jurisdiction (required)",
        "for whom the partner acts: --municipality BFS --canton XX, --canton XX, or --federal; "
        "a case's party slots are filled by role and jurisdiction",
    )
    where.add_argument("--municipality", type=int, metavar="BFS", help="the municipality's BFS number")
    where.add_argument("--canton", metavar="XX", help="the canton's abbreviation, e.g. LU")
    where.add_argument("--federal", action="store_true", help="acts for the Confederation")
    add_wait_options(add)
    add.set_defaults(func=_register_partner)
    suspend = partner.add_parser("suspend", help="stop pseudonyms and deliveries to a partner")
    suspend.add_argument("partner_id", help="the partner id, e.g. CH/MUN/1061/einwohnerdienste")
    suspend.add_argument("--reason", help="why, for the register and the audit")
    add_wait_options(suspend)
    suspend.set_defaults(func=_suspend)
    activate = partner.add_parser("activate", help="make a suspended partner active again")
    activate.add_argument("partner_id", help="the partner id, e.g. CH/MUN/1061/einwohnerdienste")
    add_wait_options(activate)
    activate.set_defaults(func=_activate)
    listing = partner.add_parser("list", help="every partner and its status")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=_list_partners)
    partner_keys_cli.register(partner)

    person = commands.add_parser("person", help="persons known to identity").add_subparsers(
        dest="person_command", required=True
    )
    reviews = person.add_parser("reviews", help="open match reviews (ids only)")
    reviews.add_argument("--json", action="store_true", help="print JSON instead of text")
    reviews.set_defaults(func=_reviews)
    erase.register(person)  # `hub person erase`: crypto-shredding (services/identity/erase.py)

    identity = commands.add_parser("identity", help="identity service administration").add_subparsers(
        dest="identity_command", required=True
    )
    rotate = identity.add_parser("rotate-key", help="start a new key version for a sector's new pseudonyms")
    rotate.add_argument("sector", choices=SECTORS, help="the sector whose key gets a new version")
    rotate.set_defaults(func=_rotate_key)


def known_roles() -> list[str]:
    """The roles something on the hub acts on: a party slot or opening of a case type (the
    registry's process definitions), operations, who administer partners and subscriptions, and
    the roles of partners that only receive (``READING_ROLES``, under all-cases subscriptions).
    A partner with any other role could fill no slot and do nothing: most likely a typo."""
    from services.registry.domain import load_processes

    roles = {OPERATIONS_ROLE, *READING_ROLES}
    for process in load_processes().by_case_type.values():
        roles |= {process.opened_by.role, *(slot.role for slot in process.parties)}
    return sorted(roles)


def known_role(value: str) -> str:
    if value not in known_roles():
        raise argparse.ArgumentTypeError(
            f"unknown role {value!r}: known roles are {', '.join(known_roles())} "
            "(a new role comes with the process definition that names it)"
        )
    return value


def _register_partner(args: argparse.Namespace) -> int:
    command = contract(
        RegisterPartner,
        partner_id=checked_partner_id(args.partner_id),
        name=args.name,
        sector=args.sector,
        roles=tuple(args.roles),
        jurisdiction=_jurisdiction(args),
        sedex_id=args.sedex_id,
        local_person_id_category=args.local_id_category,
    )
    return send(command, args.partner_id, args)


def _jurisdiction(args: argparse.Namespace) -> dict[str, Any]:
    """``--municipality BFS --canton XX``, ``--canton XX`` or ``--federal``; the contract
    checks the rest (a known canton, a BFS number in range)."""
    if args.federal:
        if args.municipality is not None or args.canton is not None:
            raise ValueError("--federal names no municipality and no canton")
        return {"level": "federal"}
    if args.canton is None:
        raise ValueError(
            "a partner needs its jurisdiction: --municipality BFS --canton XX, --canton XX or --federal"
        )
    if args.municipality is not None:
        return {"level": "municipality", "bfs_number": args.municipality, "canton": args.canton}
    return {"level": "canton", "canton": args.canton}


def _suspend(args: argparse.Namespace) -> int:
    return _change_status(args.partner_id, "suspended", args.reason, args)


def _activate(args: argparse.Namespace) -> int:
    return _change_status(args.partner_id, "active", None, args)


def _change_status(
    partner_id: str, status: PartnerStatus, reason: str | None, args: argparse.Namespace
) -> int:
    partner_id = checked_partner_id(partner_id)
    # Checked here for a clear answer; the service checks again (it may have changed since).
    if in_identity_schema(lambda stores: stores.partners.get(partner_id)) is None:
        raise HubError(f"no partner {partner_id}; register it first")
    command = contract(ChangePartnerStatus, partner_id=partner_id, status=status, reason=reason)
    return send(command, partner_id, args)


def _list_partners(args: argparse.Namespace) -> int:
    print_rows(
        in_identity_schema(lambda stores: stores.partners.listing()),
        as_json=args.json,
        line=lambda row: (
            f"{row['partner_id']}  {row['status']}  {row['sector']}  {','.join(row['roles'])}  "
            f"{_jurisdiction_text(row['jurisdiction'])}  {row['name']}"
        ),
    )
    return 0


def _jurisdiction_text(jurisdiction: dict[str, Any] | None) -> str:
    return "no jurisdiction" if jurisdiction is None else str(Jurisdiction.model_validate(jurisdiction))


def _reviews(args: argparse.Namespace) -> int:
    print_rows(
        in_identity_schema(lambda stores: stores.reviews.open()),
        as_json=args.json,
        line=lambda row: (
            f"{row['id']}  {row['new_person_id']}  {row['candidate_person_id']}  "
            f"{row['business_process_id'] or '-'}  {row['reason']}"
        ),
    )
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    version = in_identity_schema(lambda stores: stores.pseudonyms.rotate(args.sector))
    print(f"{args.sector}: key version {version} is current; pseudonyms already issued stay as they are")
    return 0
