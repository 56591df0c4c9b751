"""Key pairs for the partners of a one-machine hub (``hub up``, ``hub demo``, the tests).

On such a hub the partners are played by this process, so they need key pairs before the
hub is reported up, or every event they send would be refused. Each registered partner
gets one (kept under ``<state_dir>/partner-keys/``, reused on the next start); its public
key is registered as an operator would do it (``RegisterPartnerKey`` on ``hub.admin``
from the CLI source, signed with the local operator key that the services trust, see
``hub.security.operator_keys``), and the supervisor waits until the registry has mirrored every key.
The private keys and the hub's public key go into this process's keyring (``hub.security.keyring``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.admin import RegisterPartnerKey
from hub.errors import ConfigurationError
from hub.local.partner_client import PartnerClient
from hub.local.seed import seed_demo_partners
from hub.runtime.db import connect
from hub.runtime.schemas import migrate_all
from hub.runtime.settings import HubSettings
from hub.security.key_files import create_private_key, hub_signing_key, load_private_key
from hub.security.keyring import Keyring
from hub.security.signing import SigningKey, fingerprint

PARTNER_KEYS_DIR = "partner-keys"
MIRROR_TIMEOUT_S = 60.0


def partner_slug(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'ch.mun.1061.einwohnerdienste' (file names, key ids)."""
    return re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")


def partner_key_file(state_dir: Path, partner_id: str) -> Path:
    return state_dir / PARTNER_KEYS_DIR / f"{partner_slug(partner_id)}.key"


def create_hub_key(settings: HubSettings) -> SigningKey:
    """Create the hub's key if it does not exist, before the registry starts (it would too)."""
    return hub_signing_key(settings)


def local_keyring(settings: HubSettings) -> Keyring:
    """The keys of the partners the local tooling plays on the hub at ``settings``: each
    partner's key file (``provision_partner_keys`` wrote them) and the hub's public key."""
    keyring = Keyring()
    keyring.trust_hub_key(hub_signing_key(settings).public)
    folder = settings.state_dir / PARTNER_KEYS_DIR
    for path in sorted(folder.glob("*.key")) if folder.is_dir() else ():
        partner_id = _partner_of_key_file(path)
        if partner_id is not None:
            keyring.set_signing_key(partner_id, _named(partner_id, load_private_key(path)))
    return keyring


def local_partner(settings: HubSettings, partner_id: str, *, keyring: Keyring | None = None) -> PartnerClient:
    """A client for a partner the local tooling plays, with its key and the hub's (from
    ``keyring``, else read from the hub's state directory)."""
    keys = keyring if keyring is not None else local_keyring(settings)
    return PartnerClient(
        settings.bootstrap_servers(),
        partner_id,
        idempotence=settings.kafka_enable_idempotence,
        signing_key=keys.signing_key(partner_id),
        hub_keys=keys.hub_keys,
        topic_prefix=settings.topic_prefix,
    )


def prepare_demo_database(settings: HubSettings, progress: Callable[[str], None]) -> None:
    """Migrate every service's schema and seed the demo partners, before the services start."""
    asyncio.run(_prepare_demo_database(settings, progress))


async def _prepare_demo_database(settings: HubSettings, progress: Callable[[str], None]) -> None:
    from services import SERVICE_NAMES, load_definition

    conn = await connect(settings.database_dsn(), application_name="hub-provisioning")
    try:
        await migrate_all(conn, [load_definition(name).schema_plan() for name in SERVICE_NAMES], grant=False)
        seeded = await seed_demo_partners(conn)
    finally:
        await conn.close()
    progress(f"demo partners seeded ({', '.join(seeded)})")


def provision_partner_keys(settings: HubSettings, progress: Callable[[str], None]) -> int:
    """Give every registered partner a registered key pair; returns how many were registered now."""
    return asyncio.run(_provision(settings, progress))


async def _provision(settings: HubSettings, progress: Callable[[str], None]) -> int:
    # Imported here: the hub runtime does not depend on a service, only this set-up step does.
    from services.identity.admin_publisher import publish_admin_commands

    conn = await connect(settings.database_dsn(), application_name="hub-provisioning")
    try:
        partner_ids = [row[0] for row in await conn.fetch("SELECT partner_id FROM identity.partners")]
        usable, refused = await _mirrored_key_ids(conn)
        keys = {pid: _partner_key(settings.state_dir, pid, refused) for pid in sorted(partner_ids)}
        commands = [
            (
                RegisterPartnerKey(
                    partner_id=pid,
                    key_id=key.key_id,
                    public_key=key.public.base64,
                    valid_from=_a_minute_ago(),
                ),
                pid,
            )
            for pid, key in keys.items()
            if key.key_id not in usable
        ]
        if commands:
            await publish_admin_commands(settings, commands)
        await _wait_until_mirrored(conn, {key.key_id for key in keys.values()})
    finally:
        await conn.close()
    _write_partner_ids(settings.state_dir, keys)
    progress(f"{len(keys)} partner keys ready ({len(commands)} registered now)")
    return len(commands)


def _partner_key(state_dir: Path, partner_id: str, refused: set[str]) -> SigningKey:
    """The key in the partner's key file, else a new one; a key this hub's register revoked
    or let expire is replaced by a new one."""
    path = partner_key_file(state_dir, partner_id)
    if path.exists():
        key = _named(partner_id, load_private_key(path))
        if key.key_id not in refused:
            return key
        path.unlink()
        path.with_name(path.name + ".pub").unlink(missing_ok=True)
    return _named(partner_id, create_private_key(path))


# Which partner each key file belongs to: a file name is the partner's slug, which does not
# give the partner id back ("/" and "." both become ".").
PARTNER_IDS_FILE = "partners.json"


def _write_partner_ids(state_dir: Path, keys: dict[str, SigningKey]) -> None:
    path = state_dir / PARTNER_KEYS_DIR / PARTNER_IDS_FILE
    known = json.loads(path.read_text()) if path.exists() else {}
    known |= {partner_slug(pid): pid for pid in keys}
    path.write_text(json.dumps(known, indent=2, sort_keys=True))


def _partner_of_key_file(path: Path) -> str | None:
    ids = path.parent / PARTNER_IDS_FILE
    known: dict[str, str] = json.loads(ids.read_text()) if ids.exists() else {}
    return known.get(path.name.removesuffix(".key"))


def _named(partner_id: str, private_key: Ed25519PrivateKey) -> SigningKey:
    return SigningKey(f"{partner_slug(partner_id)}-{fingerprint(private_key.public_key())[:12]}", private_key)


async def _mirrored_key_ids(conn: asyncpg.Connection) -> tuple[set[str], set[str]]:
    """Key ids the registry accepts now, and those it refuses (revoked or expired)."""
    rows = await conn.fetch(
        "SELECT key_id, revoked_at IS NULL AND (valid_until IS NULL OR valid_until > now()) AS usable"
        " FROM registry.partner_keys"
    )
    return {r["key_id"] for r in rows if r["usable"]}, {r["key_id"] for r in rows if not r["usable"]}


def _a_minute_ago() -> dt.datetime:
    # A little slack: identity's and the registry's clocks may differ from this one.
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


async def _wait_until_mirrored(conn: asyncpg.Connection, key_ids: set[str]) -> None:
    deadline = asyncio.get_running_loop().time() + MIRROR_TIMEOUT_S
    while True:
        mirrored = await conn.fetchval(
            "SELECT count(*) FROM registry.partner_keys"
            " WHERE key_id = ANY($1::text[]) AND revoked_at IS NULL",
            list(key_ids),
        )
        if mirrored == len(key_ids):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise ConfigurationError(
                f"the registry mirrored {mirrored} of {len(key_ids)} partner keys "
                f"after {MIRROR_TIMEOUT_S:.0f}s"
            )
        await asyncio.sleep(0.2)
