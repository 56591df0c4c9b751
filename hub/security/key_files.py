"""Ed25519 key files: generating, loading, and the hub's own delivery key.

Private keys are PKCS#8 PEM files readable by their owner only (``openssl genpkey
-algorithm ed25519`` writes the same); public keys are SubjectPublicKeyInfo PEM
(``openssl pkey -pubout``) or the raw key in base64, one line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from hub.runtime.settings import HubSettings
from hub.security.signing import PublicKey, SigningKey, decode_public_key, fingerprint

HUB_KEY_PREFIX = "hub-"


def derived_key_id(public_key: Ed25519PublicKey, prefix: str) -> str:
    """A key id from the key itself: stable for a key file, different for every new key."""
    return f"{prefix}{fingerprint(public_key)[:16]}"


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds no Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file: PEM, or the raw 32 bytes in base64 on one line."""
    text = path.read_bytes()
    if text.lstrip().startswith(b"-----BEGIN"):
        key = load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} holds no Ed25519 public key")
        return key
    return decode_public_key(text.decode("ascii", errors="replace"))


def create_private_key(path: Path) -> Ed25519PrivateKey:
    """Write a new key to ``path`` (and its public key to ``path.pub``) unless one is there.

    The file appears complete or not at all (written aside, then hard-linked), so two
    processes racing to create it end up with the same key: the loser reads the winner's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp: mode 0600
            handle.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_private_key(path)
    finally:
        os.unlink(temporary)
    public_file = path.with_name(path.name + ".pub")
    with contextlib.suppress(FileExistsError), public_file.open("x") as handle:
        handle.write(public_pem(key.public_key()))
    return key


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    return load_private_key(path) if path.exists() else create_private_key(path)


def hub_key_path(settings: HubSettings) -> Path:
    return settings.signing_key_file or settings.state_dir / "secrets" / "hub-signing.key"


def hub_signing_key(settings: HubSettings) -> SigningKey:
    """The key the hub signs deliveries with; created under ``state_dir`` if not configured."""
    path = hub_key_path(settings)
    if settings.signing_key_file is not None and not path.exists():
        raise FileNotFoundError(f"HUB_SIGNING_KEY_FILE {path} does not exist")
    private_key = load_or_create_private_key(path)
    return SigningKey(derived_key_id(private_key.public_key(), HUB_KEY_PREFIX), private_key)


def hub_public_key(settings: HubSettings) -> PublicKey:
    return hub_signing_key(settings).public
