"""``hub keys show``: the hub's public delivery key, for partners to verify deliveries with.

It reads the key the registry signs with (``HUB_SIGNING_KEY_FILE``, or the one kept under
the state directory, created if missing) and prints only its public half.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hub.settings import HubSettings
from hub.signing_keys import hub_key_path, hub_signing_key, public_pem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="the hub's own signing key").add_subparsers(
        dest="keys_command", required=True
    )
    show = keys.add_parser("show", help="the public key partners verify deliveries with")
    show.add_argument("--json", action="store_true", help="key id, base64 key and PEM as one object")
    show.add_argument("--out", type=Path, help="also write the PEM to this file")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    settings = HubSettings()
    public = hub_signing_key(settings).public
    pem = public_pem(public.key)
    if args.out is not None:
        args.out.write_text(pem)
    if args.json:
        answer = {
            "key_id": public.key_id,
            "algorithm": "ed25519",
            "public_key": public.base64,
            "pem": pem,
            "file": str(hub_key_path(settings)) + ".pub",
        }
        print(json.dumps(answer, indent=2))
    else:
        print(f"key id: {public.key_id}\n{pem}", end="")
    return 0
