"""``hub keys show``: the hub's public delivery key, for partners to verify deliveries with.

It reads the key the registry signs with (``HUB_SIGNING_KEY_FILE``, or the one kept under
the state directory, created if missing) and prints only its public half. ``hub keys
operator`` does the same for the operator key this shell signs ``hub.admin`` commands
with (``HUB_OPERATOR_KEY_FILE``), for the trusted set of identity and the registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hub.runtime.settings import HubSettings
from hub.security.key_files import hub_key_path, hub_signing_key, public_pem
from hub.security.operator_keys import operator_key_path, operator_signing_key
from hub.security.secrets import create_secrets
from hub.security.signing import SigningKey


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="the hub's signing key and the operator's").add_subparsers(
        dest="keys_command", required=True
    )
    show = keys.add_parser("show", help="the public key partners verify deliveries with")
    show.add_argument("--json", action="store_true", help="key id, base64 key and PEM as one object")
    show.add_argument("--out", type=Path, help="also write the PEM to this file")
    show.set_defaults(func=_show)
    operator = keys.add_parser(
        "operator", help="the public key of the operator key hub.admin commands are signed with"
    )
    operator.add_argument("--json", action="store_true", help="key id, base64 key and PEM as one object")
    operator.add_argument("--out", type=Path, help="also write the PEM to this file (for the trusted set)")
    operator.set_defaults(func=_operator)
    secrets = commands.add_parser("secrets", help="the hub's secrets as files").add_subparsers(
        dest="secrets_command", required=True
    )
    create = secrets.add_parser(
        "create",
        description="Writes master.key (HUB_MASTER_KEY_FILE), pseudonym.key (HUB_PSEUDONYM_KEY_FILE), "
        "audit.key (HUB_AUDIT_KEY_FILE) and hub-signing.key with its public half hub-signing.key.pub "
        "(HUB_SIGNING_KEY_FILE) into DIR, mode 0600 (the public key 0644). Refuses if any of them "
        "exists, writing nothing. The operator's own key is not among them (hub keys operator).",
        help="write a new vault master key, pseudonym secret, audit key and hub signing key into "
        "DIR (mode 0600), to be mounted for the services; refuses to overwrite any",
    )
    create.add_argument(
        "directory",
        type=Path,
        metavar="DIR",
        help="a directory to create the secret files in; none of them may exist there yet",
    )
    create.set_defaults(func=_create_secrets)


def _create_secrets(args: argparse.Namespace) -> int:
    written = create_secrets(args.directory)
    for path in written:
        print(path)
    print(
        "Mount them for the services that need them: HUB_MASTER_KEY_FILE (every service), "
        "HUB_PSEUDONYM_KEY_FILE (identity), HUB_AUDIT_KEY_FILE and HUB_SIGNING_KEY_FILE (registry). "
        "Keep a copy offline: without the master key, sealed personal data cannot be read.",
        file=sys.stderr,
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = HubSettings()
    return _print(args, hub_signing_key(settings), hub_key_path(settings))


def _operator(args: argparse.Namespace) -> int:
    settings = HubSettings()
    return _print(args, operator_signing_key(settings), operator_key_path(settings))


def _print(args: argparse.Namespace, key: SigningKey, path: Path) -> int:
    public = key.public
    pem = public_pem(public.key)
    if args.out is not None:
        args.out.write_text(pem)
    if args.json:
        answer = {
            "key_id": public.key_id,
            "algorithm": "ed25519",
            "public_key": public.base64,
            "pem": pem,
            "file": str(path) + ".pub",
        }
        print(json.dumps(answer, indent=2))
    else:
        print(f"key id: {public.key_id}\n{pem}", end="")
    return 0
