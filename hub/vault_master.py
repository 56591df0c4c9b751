"""Where the vault's master key comes from, and the one this process uses.

A file outside the database: ``HUB_MASTER_KEY_FILE`` (or a file in ``HUB_SECRETS_DIR``
mounted by the platform), else ``$HUB_STATE_DIR/secrets/master.key``, created on first
start for local set-ups. Commands never create one: a new master key cannot unwrap any
stored data key, so it would only hide the real problem.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from hub.errors import ConfigurationError
from hub.settings import HubSettings
from hub.vault import KEY_BYTES, MasterKey

_installed: MasterKey | None = None


def master_key_path(settings: HubSettings) -> Path:
    return settings.master_key_file or settings.state_dir / "secrets" / "master.key"


def load_master_key(settings: HubSettings, *, create: bool) -> MasterKey:
    path = master_key_path(settings)
    if not path.exists():
        if not create or settings.master_key_file is not None:
            raise ConfigurationError(f"no vault master key at {path} (HUB_MASTER_KEY_FILE)")
        _create_atomically(path)
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigurationError(f"the vault master key in {path} is not hex") from None
    if len(secret) < KEY_BYTES:
        raise ConfigurationError(f"the vault master key in {path} is shorter than {KEY_BYTES} bytes")
    return MasterKey(secret)


def _create_atomically(path: Path) -> None:
    """Written aside, then linked into place: of three services starting together, one
    creates the key and the others read all of it, never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process was first; its key counts
    finally:
        draft.unlink()


def install(key: MasterKey | None) -> None:
    """The master key repositories use in this process; a service installs it at start."""
    global _installed
    _installed = key


def installed() -> MasterKey:
    # Fail closed: without the key nothing personal can be stored, so nothing is.
    if _installed is None:
        raise ConfigurationError("no vault master key installed: personal data cannot be stored or read")
    return _installed


@contextlib.contextmanager
def installed_as(key: MasterKey) -> Iterator[MasterKey]:
    """For a command: ``key`` while it runs, whatever was installed before afterwards."""
    before = _installed
    install(key)
    try:
        yield key
    finally:
        install(before)
