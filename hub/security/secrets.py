"""The hub's secrets as files: which a service needs, the refusal to start without them, and
``hub secrets create DIR``, the one way to make them outside a local set-up.

Locally (``hub up``, ``hub demo``) the services of one supervisor share its state
directory, and create a missing key there on first use (``HUB_LOCAL_SECRETS``, which the
supervisor sets for them). Anywhere else a service that invented its own key would
quietly disagree with its replicas: it refuses to start instead, naming what is missing,
before it connects to anything.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.audit.chain import MIN_KEY_BYTES as AUDIT_KEY_BYTES
from hub.audit.key import audit_key_path
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.security.key_files import create_private_key, hub_key_path
from hub.vault.crypto import KEY_BYTES as MASTER_KEY_BYTES
from hub.vault.master import master_key_path, ring_exists

PSEUDONYM_KEY_BYTES = 32


@dataclass(frozen=True)
class SecretFile:
    what: str  # what it is, for the operator
    variable: str  # the setting that names its file
    file_name: str  # its name in a directory `hub secrets create` writes
    path: Path  # where this service looks for it
    exists: Callable[[Path], bool] = Path.exists

    def present(self) -> bool:
        return self.exists(self.path)


def master_key_secret(settings: HubSettings) -> SecretFile:
    return SecretFile(
        "the vault master key", "HUB_MASTER_KEY_FILE", "master.key", master_key_path(settings), ring_exists
    )


def audit_key_secret(settings: HubSettings) -> SecretFile:
    return SecretFile("the audit chain's key", "HUB_AUDIT_KEY_FILE", "audit.key", audit_key_path(settings))


def hub_signing_secret(settings: HubSettings) -> SecretFile:
    return SecretFile(
        "the hub's signing key", "HUB_SIGNING_KEY_FILE", "hub-signing.key", hub_key_path(settings)
    )


def pseudonym_secret(settings: HubSettings) -> SecretFile:
    path = settings.pseudonym_key_file or settings.state_dir / "secrets" / "pseudonym.key"
    return SecretFile("the pseudonym secret", "HUB_PSEUDONYM_KEY_FILE", "pseudonym.key", path)


def require_secrets(settings: HubSettings, needed: Sequence[SecretFile]) -> None:
    """Raise a one-line ``ConfigurationError`` for the first missing secret, unless this is a
    local set-up that creates its own."""
    if settings.local_secrets:
        return
    for secret in needed:
        if not secret.present():
            raise ConfigurationError(
                f"missing secret: {secret.what} ({secret.variable}; no file at {secret.path}); "
                "create the hub's secrets once with `hub secrets create DIR` and mount them"
            )


def create_secrets(directory: Path) -> list[Path]:
    """Write a new master key, pseudonym secret, audit key and hub signing key (with its
    public key) into ``directory``, each mode 0600. Refuses if any of them exists: a secret
    that replaced one in use would make every sealed value unreadable."""
    names = ("master.key", "pseudonym.key", "audit.key", "hub-signing.key")
    taken = [name for name in names if (directory / name).exists()]
    if taken:
        raise ConfigurationError(f"{directory} already holds {', '.join(taken)}; nothing was written")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, size in (
        ("master.key", MASTER_KEY_BYTES),
        ("pseudonym.key", PSEUDONYM_KEY_BYTES),
        ("audit.key", AUDIT_KEY_BYTES),
    ):
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(size))
        written.append(path)
    create_private_key(directory / "hub-signing.key")
    written += [directory / "hub-signing.key", directory / "hub-signing.key.pub"]
    return written
