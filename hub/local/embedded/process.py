"""Child processes that never outlive the hub.

Every embedded part runs as a child process that

* writes stdout and stderr to a log file in its state directory,
* sits in its own process group, so a Ctrl-C in the terminal reaches only the
  hub, which then stops the children in order,
* gets SIGKILL from the kernel when its parent dies (Linux PR_SET_PDEATHSIG),
  so even a SIGKILLed hub leaves nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, TypeVar

from hub.local.embedded._posix import child_env, descendants, die_with_parent, pid_alive, stopped
from hub.local.embedded.errors import EmbeddedError

_PAUSE_TIMEOUT_S = 5.0

__all__ = ["ChildProcess", "child_env", "descendants", "die_with_parent", "pid_alive"]

_log = logging.getLogger(__name__)
T = TypeVar("T")


class _SpawnThread:
    """Runs every Popen on one long-lived daemon thread.

    PR_SET_PDEATHSIG fires when the forking *thread* ends. Callers use
    ``asyncio.to_thread``, whose worker threads may end while the hub (and
    therefore the child) should keep running.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], T]) -> T:
        result: Future[T] = Future()

        def job() -> None:
            try:
                result.set_result(fn())
            except BaseException as error:  # handed to the caller
                result.set_exception(error)

        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="embedded-spawner", daemon=True)
                self._thread.start()
        self._jobs.put(job)
        try:
            return result.result()
        except KeyboardInterrupt:
            # Let the spawn (milliseconds) finish, so the caller's cleanup sees the child.
            with contextlib.suppress(BaseException):
                result.result()
            raise

    def _run(self) -> None:
        while True:
            self._jobs.get()()


_spawner = _SpawnThread()
# Children still running at interpreter exit, stopped gently by _stop_leftovers.
_live: list[weakref.ref[ChildProcess]] = []


class ChildProcess:
    """One child process with a log file; see the module docstring."""

    # Kept for callers that spawn with subprocess.Popen themselves.
    die_with_parent = staticmethod(die_with_parent)

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: int | None = None,
        group: int | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._cwd = cwd
        self._env = dict(env) if env is not None else child_env()
        self._user = user
        self._group = group
        self._stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        """PID of the most recently started process (``None`` before the first start)."""
        return None if self._popen is None else self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def start(self) -> None:
        if self.running:
            raise EmbeddedError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(self.argv)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            _spawner.call(lambda: self._spawn(log))
        _log.debug("started %s (pid %s): %s", self.name, self.pid, shlex.join(self.argv))

    def _spawn(self, log: IO[bytes]) -> None:
        """Runs on the spawner thread, and records the child there, before anything can interrupt."""
        as_user = self._user is not None
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                env=self._env,
                user=self._user,
                group=self._group,
                extra_groups=[] if as_user else None,  # drop root's supplementary groups
                process_group=0,
                preexec_fn=die_with_parent,
            )
        except OSError as error:
            raise EmbeddedError(f"could not start {self.name} ({self.argv[0]}): {error}") from error
        _live[:] = [ref for ref in _live if ref() is not None]
        _live.append(weakref.ref(self))

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its exit code."""
        assert self._popen is not None, "not started"
        return self._popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to exit (the stop signal), SIGKILL it after ``timeout``."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal(popen.pid, self._stop_signal)
            # A paused process acts on the stop signal only once continued.
            self._signal_tree(signal.SIGCONT)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                signame = self._stop_signal.name
                _log.warning("%s did not exit within %g s after %s; killing it", self.name, timeout, signame)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the process and everything it started; wait until they are gone."""
        popen = self._popen
        if popen is None:
            return
        leftovers = self._signal_tree(signal.SIGKILL)
        try:
            popen.wait(5.0)
        except subprocess.TimeoutExpired as error:
            raise EmbeddedError(f"{self.name} (pid {popen.pid}) survived SIGKILL for 5 s") from error
        deadline = time.monotonic() + 5.0
        while any(pid_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
            time.sleep(0.01)

    def pause(self) -> None:
        """SIGSTOP the process and everything it started, and return once all of it stopped.

        A stop is acted upon asynchronously, and under load a multi-threaded child (the
        broker) was seen to let one SIGSTOP pass and go on answering for a second or
        more; so the signal is repeated until every thread reports itself stopped.
        """
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return
        deadline = time.monotonic() + _PAUSE_TIMEOUT_S
        while True:
            others = self._signal_tree(signal.SIGSTOP)
            if all(stopped(pid) for pid in [popen.pid, *others]):
                return
            if time.monotonic() >= deadline:
                raise EmbeddedError(f"{self.name} (pid {popen.pid}) did not stop in {_PAUSE_TIMEOUT_S:g} s")
            time.sleep(0.01)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this process wrote to its log since its latest start."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(self._log_offset, log.seek(0, os.SEEK_END) - 64 * 1024))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(log is empty)"

    def failure(self, what: str) -> EmbeddedError:
        """An error saying ``what`` went wrong, ending with the log tail."""
        if self._popen is not None and self._popen.poll() is not None:
            what += f" ({self.name} exited with code {self._popen.returncode})"
        return EmbeddedError(f"{what}; last log lines of {self.log_path}:\n{self.log_tail()}")

    def _signal_tree(self, sig: signal.Signals) -> list[int]:
        """Send ``sig`` to the process group and to descendants that left it.

        PostgreSQL backends, for example, start their own sessions.
        """
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return []
        others = descendants(popen.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, sig)  # process_group=0 made the pgid equal the pid
        for pid in others:
            self._signal(pid, sig)
        return others

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    """Stop children the program forgot, newest first, so PostgreSQL shuts down cleanly."""
    for ref in reversed(_live):
        child = ref()
        if child is not None and child.running:
            _log.warning("stopping %s (pid %s) left running at exit", child.name, child.pid)
            child.stop(timeout=5.0)
