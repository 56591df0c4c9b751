"""Operating-system helpers for child processes: parent-death signal, environment, /proc."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Environment variables children may inherit. Everything else is dropped, so
# e.g. OTEL_EXPORTER_OTLP_ENDPOINT, STORAGE_ENGINE or PGPORT meant for the hub
# cannot make a child reach outside loopback or read the wrong settings.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    # Declared so the kernel sees clean 64-bit "unsigned long" arguments.
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    result: Callable[..., int] = prctl
    return result


# Resolved before any fork: a preexec_fn should do as little as possible.
_PRCTL = _load_prctl()
_forking_pid = os.getpid()


def _remember_forking_pid() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


# subprocess runs these "before fork" hooks in the parent whenever a
# preexec_fn is given, so the child can tell who its parent was meant to be.
os.register_at_fork(before=_remember_forking_pid)


def die_with_parent() -> None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent dies.

    Note that Linux counts the *thread* that forked as the parent: spawn from
    a thread that lives as long as the child (``ChildProcess`` does this).
    Elsewhere than Linux this does nothing.
    """
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    # If the parent died between fork() and prctl(), the signal will never come.
    if os.getppid() != _forking_pid:
        os._exit(1)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a child: a few inherited basics plus ``extra``."""
    env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(extra or {})
    return env


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running process (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, but belongs to another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return sys.platform != "linux"  # no /proc entry on Linux means it is gone
    # The state letter follows the command name, which is in parentheses.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def stopped(pid: int) -> bool:
    """True if every thread of ``pid`` is stopped by a signal (or the process is gone).

    Where /proc cannot tell (not Linux), a sent SIGSTOP is taken as acted upon.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for thread in threads:
        try:
            stat = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        if stat.rpartition(")")[2].split()[0] not in ("T", "t", "Z", "X"):
            return False
    return True


def descendants(pid: int) -> list[int]:
    """All living descendants of ``pid`` (Linux only; empty elsewhere)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # exited meanwhile, or no /proc
        for thread in threads:
            try:
                kids = [int(k) for k in Path(f"/proc/{parent}/task/{thread}/children").read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            pending.extend(kids)
    return found
