"""Operator keys: proof that a command on ``hub.admin`` comes from a trusted operator.

Whoever may write to ``hub.admin`` could otherwise register a partner or add a signing
key by naming the CLI as the source. So every command the ``hub`` CLI publishes there
(source ``urn:ch:lu:hub:admin:cli``) is signed like a partner event (``hub.security.signing``),
with the key of the operator who runs the command (``HUB_OPERATOR_KEY_FILE``), and
identity and the registry apply it only if it verifies with one of the trusted operator
public keys (``HUB_OPERATOR_PUBLIC_KEYS``: a file, or a directory of ``*.pub`` /
``*.pem`` files, each holding one or more keys as PEM or one base64 line per key).

A key id is derived from the key itself (``operator-`` and 16 hex digits of its SHA-256),
so a public key file needs no id beside it and no operator can sign under another's id.
The trusted set is read again for every command: removing an operator's file revokes
the key with the next command, without restarting a service.

A one-machine hub (``hub up``, ``hub demo``, the tests) configures neither setting: the
CLI signs with ``<state_dir>/secrets/operator.key`` and the services trust its public
half; whichever comes first creates it, as with the hub's own signing key.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from contracts import Envelope
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.security.key_files import derived_key_id, load_or_create_private_key, load_private_key
from hub.security.signing import (
    Headers,
    PublicKey,
    SigningKey,
    UnknownSigningKey,
    UnsignedEvent,
    check_freshness,
    decode_public_key,
)

ADMIN_CLI_SOURCE = "urn:ch:lu:hub:admin:cli"
OPERATOR_KEY_PREFIX = "operator-"
PUBLIC_KEY_SUFFIXES = (".pub", ".pem")
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)

TrustedKeys = Mapping[str, PublicKey]


def operator_key_id(public_key: Ed25519PublicKey) -> str:
    return derived_key_id(public_key, OPERATOR_KEY_PREFIX)


def operator_key_path(settings: HubSettings) -> Path:
    return settings.operator_key_file or settings.state_dir / "secrets" / "operator.key"


def operator_signing_key(settings: HubSettings) -> SigningKey:
    """The key this operator signs ``hub.admin`` commands with; created under ``state_dir`` if not configured.

    A configured file must exist: a typo must not silently sign with a new, untrusted key.
    """
    path = operator_key_path(settings)
    if settings.operator_key_file is None:
        private_key = load_or_create_private_key(path)
    elif path.exists():
        private_key = load_private_key(path)
    else:
        raise ConfigurationError(f"HUB_OPERATOR_KEY_FILE {path} does not exist")
    return _named(private_key)


def _named(private_key: Ed25519PrivateKey) -> SigningKey:
    return SigningKey(operator_key_id(private_key.public_key()), private_key)


def parse_public_keys(text: bytes, origin: str) -> list[PublicKey]:
    """Every key in ``text``: PEM blocks, and lines of base64 outside them (``#`` starts a comment)."""
    found: list[Ed25519PublicKey] = []
    for block in _PEM_BLOCK.findall(text):
        key = load_pem_public_key(block)
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError(f"{origin} holds a public key that is not Ed25519")
        found.append(key)
    for number, line in enumerate(_PEM_BLOCK.sub(b"", text).decode("ascii", "replace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            found.append(decode_public_key(line))
        except ValueError as error:
            raise ConfigurationError(f"{origin} line {number}: {error}") from None
    return [PublicKey(operator_key_id(key), key) for key in found]


def load_public_keys(path: Path) -> dict[str, PublicKey]:
    """The keys in a file, or in every ``*.pub`` / ``*.pem`` file of a directory, by key id."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in PUBLIC_KEY_SUFFIXES and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise ConfigurationError(f"HUB_OPERATOR_PUBLIC_KEYS {path} does not exist")
    return {key.key_id: key for file in files for key in parse_public_keys(file.read_bytes(), str(file))}


def trusted_operator_keys(settings: HubSettings) -> dict[str, PublicKey]:
    """The operator keys whose commands this service applies (see the module docstring)."""
    if settings.operator_public_keys is not None:
        return load_public_keys(settings.operator_public_keys)
    local = operator_signing_key(settings).public
    return {local.key_id: local}


@dataclass(frozen=True)
class CommandPolicy:
    """What identity and the registry demand of operator commands on ``hub.admin``.

    ``HUB_REQUIRE_SIGNATURES`` and the replay window apply as they do to partner events:
    with signatures optional an unsigned command passes, but a signature present is
    always checked, and so is the command's time.
    """

    trusted: Callable[[], TrustedKeys]
    require_signatures: bool
    max_age_s: float
    max_future_skew_s: float

    @classmethod
    def from_settings(cls, settings: HubSettings) -> CommandPolicy:
        trusted_operator_keys(settings)  # a service with a broken trusted set does not start
        return cls(
            trusted=functools.partial(trusted_operator_keys, settings),
            require_signatures=settings.require_signatures,
            max_age_s=settings.event_max_age_s,
            max_future_skew_s=settings.event_max_future_skew_s,
        )

    def verify_operator_command(self, headers: Headers, value: bytes) -> None:
        """Raise a ``SignatureRefused`` or ``ReplayRefused`` unless a trusted operator signed it, recently.

        ``headers`` and ``value`` are the command's record as received: the signature covers them.
        """
        envelope = Envelope.from_headers(headers)
        if envelope.sigkeyid is not None or envelope.signature is not None or self.require_signatures:
            if envelope.sigkeyid is None or envelope.signature is None:
                raise UnsignedEvent(
                    f"admin command {envelope.id[:128]} is not signed by an operator "
                    "(ce_sigkeyid and ce_signature)"
                )
            key = self.trusted().get(envelope.sigkeyid)
            if key is None:
                raise UnknownSigningKey(
                    f"admin command {envelope.id[:128]} is signed with {envelope.sigkeyid[:128]}, "
                    "not a trusted operator key"
                )
            key.verify(headers, value)
        self.check_time(envelope)

    def check_time(self, envelope: Envelope) -> None:
        # After the signature: only then is the time the sender's own statement.
        check_freshness(
            envelope.time,
            dt.datetime.now(dt.UTC),
            max_age_s=self.max_age_s,
            max_future_skew_s=self.max_future_skew_s,
        )
