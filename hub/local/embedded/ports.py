"""Free ports and waiting for a child to listen."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from pathlib import Path

from hub.local.embedded.errors import EmbeddedError
from hub.local.embedded.process import ChildProcess, descendants

_POLL_S = 0.02
_FIRST_PORT = 20000  # lowest port free_port hands out, above most well-known services
_handed_out: set[int] = set()
_lock = threading.Lock()
_TCP_LISTEN = "0A"  # socket state in /proc/net/tcp


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing uses right now and this process has not handed out before.

    It comes from below the kernel's ephemeral range when possible: ports in
    that range are also taken by every outgoing connection, which could grab
    the port between this call and the child binding it.
    """
    low, _high = _ephemeral_range()
    with _lock:
        if low - _FIRST_PORT >= 1000:
            for _attempt in range(100):
                port = random.randrange(_FIRST_PORT, low)
                if port not in _handed_out and _bindable(host, port):
                    _handed_out.add(port)
                    return port
        for _attempt in range(100):
            port = _kernel_port(host)
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise EmbeddedError(f"no free TCP port found on {host}")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # the IANA range, used by macOS and Windows


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for_port(host: str, port: int, timeout: float, *, child: ChildProcess | None = None) -> None:
    """Block until ``host:port`` accepts TCP connections.

    With ``child`` given, fail as soon as it exits, and end the error message
    with its log tail.
    """
    deadline = time.monotonic() + timeout
    while True:
        if child is not None and not child.running:
            raise child.failure(f"{child.name} exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            pass
        else:
            if child is not None and not _listens(child, port):
                # Seen with Tansu: on EADDRINUSE it logs a panic but keeps running.
                raise child.failure(
                    f"{child.name} cannot use {host}:{port}: another process already listens there"
                )
            return
        if time.monotonic() >= deadline:
            what = child.name if child is not None else "nothing"
            message = f"{what} did not listen on {host}:{port} within {timeout:g} s"
            raise child.failure(message) if child is not None else EmbeddedError(message)
        time.sleep(_POLL_S)


def _listens(child: ChildProcess, port: int) -> bool:
    """Whether ``child`` (or a descendant) owns a socket listening on ``port``.

    Linux only (reads /proc); elsewhere assumed true.
    """
    inodes = _listening_socket_inodes(port)
    if inodes is None or child.pid is None:
        return True
    for pid in [child.pid, *descendants(child.pid)]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                return True
    return False


def _listening_socket_inodes(port: int) -> set[int] | None:
    inodes: set[int] = set()
    try:
        tables = [Path(f"/proc/net/{name}").read_text() for name in ("tcp", "tcp6")]
    except OSError:
        return None
    for table in tables:
        for row in table.splitlines()[1:]:
            # sl local_address rem_address st ... inode: "0100007F:1F90 00000000:0000 0A ..."
            fields = row.split()
            if fields[3] == _TCP_LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(int(fields[9]))
    return inodes
