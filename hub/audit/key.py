"""Where the audit chain's HMAC key comes from: a file outside the database.

The registry creates it on first start for local set-ups (``$HUB_STATE_DIR/secrets/
audit.key``); production mounts it (``HUB_AUDIT_KEY_FILE``, or ``HUB_SECRETS_DIR``), so
that database administrators can read the log but not re-seal a changed entry. Verifying
needs the same file and never creates one: a new key would make every entry look forged.
"""

from __future__ import annotations

from pathlib import Path

from hub.audit.chain import MIN_KEY_BYTES, AuditKey
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.security.secret_files import create_hex_secret_once


def audit_key_path(settings: HubSettings) -> Path:
    return settings.audit_key_file or settings.state_dir / "secrets" / "audit.key"


def load_audit_key(settings: HubSettings, *, create: bool) -> AuditKey:
    """The key in the file; ``create`` makes a default-located file if there is none yet."""
    path = audit_key_path(settings)
    if not path.exists():
        if not create or settings.audit_key_file is not None:
            raise ConfigurationError(f"no audit key at {path} (HUB_AUDIT_KEY_FILE)")
        create_hex_secret_once(path, MIN_KEY_BYTES)
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigurationError(f"the audit key in {path} is not hex") from None
    if len(secret) < MIN_KEY_BYTES:
        raise ConfigurationError(f"the audit key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    return AuditKey(secret)
