"""Where the vault's master key ring comes from.

A file outside the database: ``HUB_MASTER_KEY_FILE`` (or a file in ``HUB_SECRETS_DIR``
mounted by the platform), else ``$HUB_STATE_DIR/secrets/master.key``, created on first
start for local set-ups. Commands never create one: a new master key cannot unwrap any
stored data key, so it would only hide the real problem.

The ring is that file and its siblings, one file per version, so that every version can
be created exclusively (``O_EXCL``), mounted as one key of a platform secret, and changed
state by an atomic rename; no file is ever rewritten:

  ``master.key``               version 1 (the single key of a hub that never rotated)
  ``master.key.v2.pending``    version 2, pending: unwraps, but wraps nothing yet
  ``master.key.v2``            version 2, active; the highest active version is current
  ``master.key.v2.retired``    retired: never read again (``master.key.retired`` for 1)
  ``master.key.index``         the blind-index root, derived from version 1 (``hub/vault.py``)

Each key file holds at least 32 bytes as hex, the index file exactly 32. A hub with only
``master.key`` is a ring with version 1, without any step by the operator.

Nothing in a process holds the key globally: a service is handed it by its composition
root (``ServiceContext.master_key``), a command loads it (``load_master_key(settings,
create=False)``) and passes it to what opens sealed data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.vault.crypto import KEY_BYTES, MasterKey, MasterVersion, blind_index_root


class FileState(Enum):
    ACTIVE = "active"
    PENDING = "pending"
    RETIRED = "retired"


@dataclass(frozen=True)
class RingFile:
    number: int
    state: FileState
    path: Path


def master_key_path(settings: HubSettings) -> Path:
    """Version 1's file; the ring's other files are named after it, next to it."""
    return settings.master_key_file or settings.state_dir / "secrets" / "master.key"


def index_path(base: Path) -> Path:
    return base.with_name(f"{base.name}.index")


def version_path(base: Path, number: int, state: FileState) -> Path:
    name = base.name if number == 1 else f"{base.name}.v{number}"
    suffix = {FileState.ACTIVE: "", FileState.PENDING: ".pending", FileState.RETIRED: ".retired"}[state]
    return base.with_name(name + suffix)


def parse_ring_name(base: str, name: str) -> tuple[int, FileState] | None:
    """The version and state a file name stands for in the ring of ``base``; None if it is
    no version file (the index, a draft, anything else in the directory)."""
    if name == base:
        return 1, FileState.ACTIVE
    if name == f"{base}.retired":
        return 1, FileState.RETIRED
    if not name.startswith(f"{base}.v"):
        return None
    number, _, state = name.removeprefix(f"{base}.v").partition(".")
    # Version 1 is the base file itself; "v02" or "v2.old" would be ambiguous: not ours.
    if not number.isdigit() or number != str(int(number)) or int(number) < 2:
        return None
    states = {"": FileState.ACTIVE, "pending": FileState.PENDING, "retired": FileState.RETIRED}
    return (int(number), states[state]) if state in states else None


def ring_files(base: Path) -> list[RingFile]:
    """Every version file next to ``base``, retired ones included, by version."""
    if not base.parent.is_dir():
        return []
    found = []
    for path in base.parent.iterdir():
        parsed = parse_ring_name(base.name, path.name)
        if parsed is not None:
            found.append(RingFile(parsed[0], parsed[1], path))
    return sorted(found, key=lambda file: (file.number, file.state.value))


def read_ring(base: Path) -> tuple[list[MasterVersion], bytes | None]:
    """The versions in use (active and pending) and the index root, if its file exists."""
    chosen: dict[int, RingFile] = {}
    for file in ring_files(base):
        # An active file wins over a pending copy of the same version (a platform secret
        # may briefly carry both while an operator promotes it).
        if file.state is not FileState.RETIRED and (
            file.number not in chosen or file.state is FileState.ACTIVE
        ):
            chosen[file.number] = file
    if not chosen:
        raise ConfigurationError(f"no vault master key at {base} (HUB_MASTER_KEY_FILE)")
    versions = [
        MasterVersion(file.number, _read_hex(file.path, minimum=KEY_BYTES), file.state is FileState.PENDING)
        for file in sorted(chosen.values(), key=lambda file: file.number)
    ]
    index = index_path(base)
    root = _read_hex(index, minimum=KEY_BYTES, exact=True) if index.exists() else None
    return versions, root


def load_master_key(settings: HubSettings, *, create: bool) -> MasterKey:
    path = master_key_path(settings)
    if not ring_exists(path):
        if not create or settings.master_key_file is not None:
            raise ConfigurationError(f"no vault master key at {path} (HUB_MASTER_KEY_FILE)")
        _create_atomically(path, exclusive=False)
    return load_ring(path)


def load_ring(base: Path) -> MasterKey:
    """The ring of ``base`` as it is on disk now; it reads itself again when it needs to."""
    versions, root = read_ring(base)
    try:
        return MasterKey(versions, index_root=root, source=lambda: read_ring(base))
    except ValueError as error:
        raise ConfigurationError(f"the vault master key ring at {base}: {error}") from None


def add_pending_version(base: Path) -> int:
    """A new version with a fresh secret, pending; its number is the next never used."""
    number = max((file.number for file in ring_files(base)), default=1) + 1
    try:
        _create_atomically(version_path(base, number, FileState.PENDING), exclusive=True)
    except FileExistsError:
        raise ConfigurationError(f"master key version {number} was just created by someone else") from None
    return number


def promote(base: Path, number: int) -> None:
    """The pending version becomes active (and current, being the highest)."""
    pending = version_path(base, number, FileState.PENDING)
    _move(pending, version_path(base, number, FileState.ACTIVE))


def retire_version(base: Path, number: int, *, delete: bool) -> Path | None:
    """Out of the ring: renamed ``.retired`` (kept for backups made before the rotation),
    or deleted. Returns the retired file, None if deleted."""
    files = [f for f in ring_files(base) if f.number == number and f.state is not FileState.RETIRED]
    if not files:
        raise ConfigurationError(f"no master key version {number} in the ring at {base}")
    if number == 1:
        ensure_index_root(base)  # the blind indexes outlive version 1
    retired = None if delete else version_path(base, number, FileState.RETIRED)
    for file in files:
        if retired is None:
            file.path.unlink()
        elif file.path.exists():
            _move(file.path, retired)
    return retired


def ensure_index_root(base: Path) -> Path:
    """Write the blind-index root next to the ring, derived from version 1, if it is not
    there yet: from then on version 1 may be retired without losing any index."""
    index = index_path(base)
    if index.exists():
        return index
    if not base.exists():
        raise ConfigurationError(
            f"neither {index} nor version 1 ({base}) to derive the blind-index root from"
        )
    root = blind_index_root(_read_hex(base, minimum=KEY_BYTES))
    with contextlib.suppress(FileExistsError):  # a concurrent command wrote the same bytes
        _write_exclusively(index, root.hex())
    return index


def ring_exists(base: Path) -> bool:
    # Retired files count: a ring whose versions are all retired is an error to report,
    # never a reason to start a fresh key that unwraps nothing.
    return base.exists() or bool(ring_files(base)) or index_path(base).exists()


def _read_hex(path: Path, *, minimum: int, exact: bool = False) -> bytes:
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigurationError(f"the vault master key in {path} is not hex") from None
    if len(secret) < minimum:
        raise ConfigurationError(f"the vault master key in {path} is shorter than {minimum} bytes")
    if exact and len(secret) != minimum:
        raise ConfigurationError(f"{path} must hold exactly {minimum} bytes")
    return secret


def _create_atomically(path: Path, *, exclusive: bool) -> None:
    """Written aside, then linked into place: of three services starting together, one
    creates the key and the others read all of it, never a half-written file."""
    try:
        _write_exclusively(path, secrets.token_hex(KEY_BYTES))
    except FileExistsError:
        if exclusive:
            raise
        # another process was first; its key counts


def _write_exclusively(path: Path, text: str) -> None:
    """``path`` with ``text``, mode 0600; FileExistsError if it exists (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    with contextlib.suppress(FileNotFoundError):
        draft.unlink()  # left by a process of the same pid that died mid-write
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.link(draft, path)
    finally:
        draft.unlink()


def _move(source: Path, target: Path) -> None:
    # link + unlink instead of rename: rename would silently replace an existing target.
    os.link(source, target)
    source.unlink()
