"""Where the pseudonym secret comes from: a file, created on first use for local set-ups.

It is the master secret: each sector's key at each version is derived from it
(``domain.sector_key``), so the database only ever holds key version numbers. It is not
enough to derive a person's pseudonym: that also takes the person's own seed, sealed in
their record, which erasure destroys.
"""

from __future__ import annotations

import os
import secrets

from hub.settings import HubSettings

_MIN_SECRET_BYTES = 32


def load_pseudonym_secret(settings: HubSettings) -> bytes:
    path = settings.pseudonym_key_file or settings.state_dir / "secrets" / "pseudonym.key"
    if not path.exists():
        if settings.pseudonym_key_file is not None:
            raise FileNotFoundError(f"HUB_PSEUDONYM_KEY_FILE {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: if two processes race, one creates the secret and the other reads it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(_MIN_SECRET_BYTES))
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"pseudonym secret in {path} is shorter than {_MIN_SECRET_BYTES} bytes")
    return secret
