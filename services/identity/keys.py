"""Where the pseudonym secret comes from: a file, created on first use for local set-ups.

It is the master secret: each sector's key at each version is derived from it
(``domain.sector_key``), so the database only ever holds key version numbers. It is not
enough to derive a person's pseudonym: that also takes the person's own seed, sealed in
their record, which erasure destroys.
"""

from __future__ import annotations

from hub.runtime.settings import HubSettings
from hub.security.secret_files import create_hex_secret_once

_MIN_SECRET_BYTES = 32


def load_pseudonym_secret(settings: HubSettings) -> bytes:
    path = settings.pseudonym_key_file or settings.state_dir / "secrets" / "pseudonym.key"
    if not path.exists():
        if settings.pseudonym_key_file is not None:
            raise FileNotFoundError(f"HUB_PSEUDONYM_KEY_FILE {path} does not exist")
        create_hex_secret_once(path, _MIN_SECRET_BYTES)
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"pseudonym secret in {path} is shorter than {_MIN_SECRET_BYTES} bytes")
    return secret
