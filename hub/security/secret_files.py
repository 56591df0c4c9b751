"""Secrets kept as files of hex digits, created on first use for local set-ups."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_hex_secret_once(path: Path, nbytes: int) -> None:
    """Write ``nbytes`` random bytes as hex to ``path`` (mode 0600) unless it exists.

    O_EXCL: if two processes race, one writes the secret and the other reads that one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(nbytes))
