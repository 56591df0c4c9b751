"""Registry commands: ``hub subscription set|list``, ``hub catalog list`` and ``hub acls``.

Changes go through events like any other partner or operator system would send them
(``SetSubscription`` on ``hub.admin``, signed with the operator's key); listing reads the
registry's tables.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import SetSubscription
from hub.cli.admin_wait import add_wait_options, finish_from
from hub.cli.database import run_on_database, running_hub
from hub.cli.output import print_rows
from hub.runtime.settings import HubSettings
from hub.security.acls import DEFAULT_STRIMZI_CLUSTER
from services.identity.admin_publisher import publish_admin_command
from services.registry.adapters.postgres import operations

Rows = list[dict[str, Any]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subscription = commands.add_parser("subscription", help="who receives which events").add_subparsers(
        dest="subscription_command", required=True
    )
    put = subscription.add_parser("set", help="create, approve or revoke a subscription (via hub.admin)")
    put.add_argument("partner_id", help="the subscribing partner's id")
    put.add_argument(
        "event_type", help="the event type it wants delivered, e.g. ch.lu.hub.relocation.move-reported.v1"
    )
    put.add_argument("--case-type", help="only cases of this type (relocation, building-permit)")
    put.add_argument(
        "--purpose", required=True, help="what the partner does with the data (audited with every delivery)"
    )
    put.add_argument(
        "--legal-basis",
        required=True,
        help="the statute that allows the delivery (audited with every delivery)",
    )
    put.add_argument("--legal-basis-url", help="where the statute can be read")
    put.add_argument("--field", action="append", default=[], help="a data category (dotted path); repeat")
    put.add_argument(
        "--retention-days", type=int, default=365, help="how long the partner may keep what it receives (365)"
    )
    put.add_argument(
        "--status",
        choices=["requested", "approved", "revoked"],
        default="requested",
        help="only an approved subscription routes (requested)",
    )
    put.add_argument(
        "--scope",
        choices=["party", "all-cases"],
        default="party",
        help="party (default): only cases the partner is a party to; all-cases: every case of the "
        "type, which the legal basis must cover (statistics, operations)",
    )
    put.add_argument(
        "--slot",
        help="the party slot of --case-type this subscription serves, e.g. departure-municipality: it "
        "applies only to the cases in which the partner fills that slot (without: to any slot it "
        "fills that none of its subscriptions to the type names); not with --scope all-cases",
    )
    add_wait_options(put)
    put.set_defaults(func=_set)
    listing = subscription.add_parser("list", help="all subscriptions")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=_list)
    catalog = commands.add_parser("catalog", help="the event catalogue").add_subparsers(
        dest="catalog_command", required=True
    )
    catalog_list = catalog.add_parser("list", help="event types, publisher roles, sensitivity")
    catalog_list.add_argument("--json", action="store_true", help="print JSON instead of text")
    catalog_list.set_defaults(func=_catalog)
    acls = commands.add_parser("acls", help="Kafka ACLs for every active partner and hub service")
    acls.add_argument(
        "--format",
        choices=["kafka-acls", "strimzi"],
        default="kafka-acls",
        help="kafka-acls.sh lines, or Strimzi KafkaUsers (kafka-acls)",
    )
    acls.add_argument("--bootstrap", default="$BOOTSTRAP", help="for kafka-acls.sh lines")
    acls.add_argument(
        "--cluster",
        default=DEFAULT_STRIMZI_CLUSTER,
        help="the Strimzi Kafka resource the users belong to (label strimzi.io/cluster)",
    )
    acls.add_argument(
        "--partners-only",
        action="store_true",
        help="only the partners' principals (the services' users are part of the deployment manifests)",
    )
    acls.set_defaults(func=_acls)


def _set(args: argparse.Namespace) -> int:
    command = subscription_command(args)  # refused as typed, before any hub is looked for
    settings = running_hub()
    envelope = asyncio.run(publish_admin_command(settings, command, partner_id=args.partner_id))
    return finish_from(settings, envelope, args)


def subscription_command(args: argparse.Namespace) -> SetSubscription:
    """The command ``hub subscription set`` sends; its contract refuses what cannot be meant
    (a slot with --scope all-cases, or without --case-type)."""
    return SetSubscription(
        partner_id=args.partner_id,
        subscribed_event_type=args.event_type,
        case_type=args.case_type,
        purpose=args.purpose,
        legal_basis=args.legal_basis,
        legal_basis_url=args.legal_basis_url,
        fields=tuple(args.field),
        retention_days=args.retention_days,
        status=args.status,
        scope=args.scope,
        slot=args.slot,
    )


def _rows(read: Callable[[Any], Awaitable[Rows]]) -> Rows:
    return run_on_database(
        running_hub(),
        read,
        no_tables="no registry tables in this database; start the hub once (`hub up`)",
    )


def _print(rows: Rows, as_json: bool, columns: list[str]) -> None:
    print_rows(rows, as_json=as_json, line=lambda row: "  ".join(str(row[c]) for c in columns))


SUBSCRIPTION_COLUMNS = ["partner_id", "event_type", "case_type", "slot", "status", "scope", "legal_basis"]


def _list(args: argparse.Namespace) -> int:
    _print(_rows(operations.subscriptions), args.json, SUBSCRIPTION_COLUMNS)
    return 0


def _catalog(args: argparse.Namespace) -> int:
    _print(_rows(operations.catalogue), args.json, ["event_type", "sensitivity", "publisher_roles"])
    return 0


def _acls(args: argparse.Namespace) -> int:
    from hub.security.acls import kafka_acls_commands, partner_acls, service_acls, strimzi_users
    from services import SERVICE_NAMES

    partners = _rows(operations.active_partners)
    # The names on the cluster: this hub's HUB_TOPIC_PREFIX.
    prefix = HubSettings().topic_prefix
    bindings = (
        [] if args.partners_only else [b for name in SERVICE_NAMES for b in service_acls(name, prefix=prefix)]
    )
    for partner in partners:
        bindings += partner_acls(partner["partner_id"], partner["delivery_topic"], prefix=prefix)
    if args.format == "strimzi":
        print(strimzi_users(bindings, cluster=args.cluster), end="")
    else:
        print("\n".join(kafka_acls_commands(bindings, args.bootstrap)))
    return 0
