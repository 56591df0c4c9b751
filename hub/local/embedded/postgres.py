"""A real PostgreSQL server as a child process, with its cluster under the state directory.

The server binary runs directly (not pg_ctl, not daemonized), so it is our
child: it dies with the hub and its exit is noticed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from hub.local.embedded._aio import run_sync
from hub.local.embedded._pg_install import Account, PgInstall, find_install, grant_access, service_account
from hub.local.embedded.errors import EmbeddedError
from hub.local.embedded.ports import free_port, wait_for_port
from hub.local.embedded.process import ChildProcess, child_env, pid_alive

_log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DATABASE = "hub"
START_TIMEOUT_S = 20.0
INITDB_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL


class EmbeddedPostgres:
    def __init__(self, state_dir: Path, port: int | None = None, *, bin_dir: Path | None = None) -> None:
        """``bin_dir`` overrides where the server binaries are searched for."""
        self.state_dir = Path(state_dir).resolve()
        self.port = port if port is not None else free_port(HOST)
        self.pgdata = self.state_dir / "pgdata"
        self.socket_dir = self.state_dir / "run"
        self._bin_dir = bin_dir
        self._process: ChildProcess | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self) -> None:
        """Start the server (creating the cluster on first use) and the ``hub`` database."""
        if self.running:
            return
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        install = find_install(self._bin_dir, _cluster_version(self.pgdata))
        account = service_account()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(install, account)
        self.socket_dir.mkdir(exist_ok=True)
        if account is not None:
            grant_access(account, install, [self.pgdata, self.socket_dir])
        self._remove_stale_lock()
        server_started = time.monotonic()  # initdb has its own time limit
        process = ChildProcess(
            f"PostgreSQL {install.major}",
            self._server_argv(install),
            log_path=self.state_dir / "postgres.log",
            cwd=self.state_dir,
            env=child_env(),
            user=account.uid if account else None,
            group=account.gid if account else None,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients to leave
        )
        self._process = process
        process.start()
        try:
            wait_for_port(HOST, self.port, START_TIMEOUT_S, child=process)
            deadline = server_started + START_TIMEOUT_S
            run_sync(lambda: _wait_and_create_database(self.port, process, deadline))
        except BaseException:
            process.kill()
            raise
        _log.info(
            "PostgreSQL %d ready on %s:%d in %.2f s (pid %s, data %s)",
            install.major,
            HOST,
            self.port,
            time.monotonic() - started,
            process.pid,
            self.pgdata,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL the server and its backends, as in a crash (for chaos tests)."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> None:
        """Stop and start again, keeping data and port."""
        self.stop()
        self.start()

    def _server_argv(self, install: PgInstall) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": self._usable_socket_dir(),
            # Local development: durability against OS crashes is not worth the time.
            "fsync": "off",
            "max_connections": "200",
            "huge_pages": "off",
            "log_line_prefix": "%m [%p] ",
        }
        argv = [str(install.postgres), "-D", str(self.pgdata), "-p", str(self.port)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def _usable_socket_dir(self) -> str:
        """The Unix-socket folder, or "" (TCP only) when its path cannot be used."""
        socket_path = os.fsencode(self.socket_dir / f".s.PGSQL.{self.port}")
        if len(socket_path) > _MAX_SOCKET_PATH or any(c in str(self.socket_dir) for c in ',"\\'):
            _log.info("no Unix socket for PostgreSQL: %s is too long or unusual; TCP only", self.socket_dir)
            return ""
        return str(self.socket_dir)

    def _initdb(self, install: PgInstall, account: Account | None) -> None:
        """Create the cluster in a staging folder and rename it, so that a
        ``pgdata`` folder always holds a complete cluster even if initdb was interrupted."""
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                message = f"{self.pgdata} is not empty but has no PG_VERSION; move it away or delete it"
                raise EmbeddedError(message)
            self.pgdata.rmdir()
        staging = self.state_dir / "pgdata.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account is not None:
            grant_access(account, install, [staging])
        argv = [str(install.initdb), "-D", str(staging), "--auth=trust", "-U", "postgres"]
        argv += ["--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        initdb = ChildProcess(
            "initdb",
            argv,
            log_path=self.state_dir / "initdb.log",
            cwd=self.state_dir,
            user=account.uid if account else None,
            group=account.gid if account else None,
        )
        initdb.start()
        try:
            code = initdb.wait(INITDB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            initdb.kill()
            raise initdb.failure(f"initdb did not finish within {INITDB_TIMEOUT_S:g} s") from None
        if code != 0:
            raise initdb.failure("initdb failed")
        staging.rename(self.pgdata)

    def _remove_stale_lock(self) -> None:
        """Remove the lock files of a server that is gone (e.g. after SIGKILL).

        PostgreSQL itself ignores a lock whose pid is dead, but not one whose
        pid was reused by an unrelated process of the same OS user.
        """
        lock = self.pgdata / "postmaster.pid"
        try:
            pid = int(lock.read_text().split("\n", 1)[0])
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and pid_alive(pid) and self._serves_our_data(pid):
            raise EmbeddedError(
                f"PostgreSQL data directory {self.pgdata} is in use by a running server (pid {pid}); "
                "stop that server (or the hub that started it) first"
            )
        _log.info("removing the stale lock files of a PostgreSQL server that is gone (pid %d)", pid)
        lock.unlink(missing_ok=True)
        for socket_lock in self.socket_dir.glob(".s.PGSQL.*"):
            socket_lock.unlink(missing_ok=True)

    def _serves_our_data(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # cannot tell (no /proc): assume the worst
        return os.fsencode(self.pgdata) in argv


def _cluster_version(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


async def _wait_and_create_database(port: int, process: ChildProcess, deadline: float) -> None:
    """Connect until the server accepts connections, then create the hub database if missing."""
    from hub.errors import DatabaseError, DatabaseUnavailable
    from hub.runtime.db import connect

    while True:
        if not process.running:
            raise process.failure(f"{process.name} exited during start-up")
        try:
            connection = await connect(
                f"postgresql://postgres@{HOST}:{port}/postgres?sslmode=disable",
                application_name="hub-embedded",
                connect_timeout_s=2,
            )
            break
        except (TimeoutError, DatabaseUnavailable) as error:
            # e.g. "the database system is starting up" while recovering after a crash
            if time.monotonic() > deadline:
                raise process.failure(
                    f"{process.name} did not accept connections within {START_TIMEOUT_S:g} s ({error})"
                ) from error
            await asyncio.sleep(0.05)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            try:
                await connection.execute(f'CREATE DATABASE "{DATABASE}"')
            except DatabaseError as error:
                # Another process may create it at the same moment (42P04: duplicate database).
                if error.sqlstate != "42P04":
                    raise
    finally:
        await connection.close()
