"""Personal data at rest: envelope encryption with one data key per person (crypto-shredding).

Why: the hub stores what partners and citizens send (names, addresses, email, the AHVN13)
in three services' tables. Erasing a person row by row would have to find every copy;
encrypting each person's confidential and secret values (``contracts.classification``)
under that person's own data key means that destroying the key erases them everywhere at
once, including in backups, while everyone else's data stays readable.

Keys
  * The **master key** is a file outside the database (``HUB_MASTER_KEY_FILE``; created
    under ``$HUB_STATE_DIR/secrets`` for local set-ups; never logged). From it, HKDF
    derives the key-encryption key and the keys of blind indexes; it never encrypts data.
    It is a **ring** of versions (``MasterKey``, ``hub/vault/master.py``): the current one
    wraps new data keys, every version in the ring unwraps, and ``hub vault
    rotate-master-key`` re-wraps stored keys under a new version (``hub/vault/rotate.py``).
    The blind indexes stay derived from version 1 whatever the ring holds.
  * **Data keys** are random AES-256-GCM keys, stored only wrapped (encrypted under the
    key-encryption key, bound to their key id) in the shared ``vault`` schema
    (``hub/vault_sql``). Destroying one overwrites the wrapped key and records when.
  * A data key is found through **references**: ``subject:<blind index of the AHVN13>``,
    ``case:<business process id>``, ``citizen:<citizen-services pseudonym>``. Keys that
    belong to one person form a **ring**; erasure destroys the whole ring.

The registry opens a case before identity has resolved the person (and before anyone
knows the citizen id), so which key should it use? Options weighed:
  1. a key per case, linked to the person's ring when identity answers: simple, but an
     erasure between the case opening and identity's answer misses the case, and if
     identity is down for hours that window is hours;
  2. identity creates the person's key and the registry re-encrypts on its answer: the
     same window, plus a second write of every case;
  3. (chosen) the registry derives the person's ``subject`` reference itself, from the
     AHVN13 it holds in memory anyway while it forwards the report to identity (a keyed
     hash under a vault key; the AHVN13 itself is never stored), and encrypts the case
     under that person's key from the first write. Identity derives the same reference,
     so both services meet at the same key without waiting for each other, and
     ``hub person erase`` reaches every case at once. The cost: the vault holds a keyed
     hash of each AHVN13 (like identity's own lookup index) until the person is erased.
Late links still exist (a case without a subject person, rows written before this
scheme): binding a reference that already names another ring merges the two rings, so an
erasure always takes every key that was ever linked to the person.

Ciphertexts: ``version (1 byte) | key id (16 bytes) | nonce (12 bytes) | AES-GCM output``.
The associated data is the header plus a context naming table, column and row
(``registry.cases.details_sealed:<case id>``), so a ciphertext copied into another row or
column fails to decrypt instead of showing another person's data there. A ciphertext whose
key is destroyed (or unknown) reads as ``Erased``, never as an exception; one that fails
authentication raises ``TamperedCiphertext``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import HubError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
HEADER_BYTES = 1 + 16
ERASED_TEXT = "[erased]"
_TAG_BYTES = 16
REFRESH_S = 10.0  # how old a process's view of the master key ring may get before it wraps
_RELOAD_MIN_S = 1.0  # an unknown version makes the ring reload, but not on every read
log = logging.getLogger(__name__)


class TamperedCiphertext(HubError):
    """A ciphertext failed authentication: changed, truncated, or moved to another row."""


@dataclass(frozen=True)
class Erased:
    """What reading a value whose data key was destroyed (or never existed) yields."""

    key_id: uuid.UUID

    def __str__(self) -> str:
        return ERASED_TEXT


@dataclass(frozen=True)
class DataKey:
    key_id: uuid.UUID
    material: bytes

    def __repr__(self) -> str:  # never the material, in any log or traceback
        return f"DataKey({self.key_id})"


def new_data_key() -> DataKey:
    return DataKey(uuid.uuid4(), AESGCM.generate_key(bit_length=KEY_BYTES * 8))


def key_id_of(blob: bytes) -> uuid.UUID:
    """The data key a ciphertext names; raises ``TamperedCiphertext`` for a malformed one."""
    if len(blob) < HEADER_BYTES + NONCE_BYTES + _TAG_BYTES or blob[0] != VERSION:
        raise TamperedCiphertext("not a vault ciphertext of a known version")
    return uuid.UUID(bytes=blob[1:HEADER_BYTES])


def tombstone(key_id: uuid.UUID) -> bytes:
    """Where a value of an erased person would go: a ciphertext naming the destroyed key,
    with nothing inside. Reading it yields ``Erased`` like any other value under that key."""
    return bytes([VERSION]) + key_id.bytes + os.urandom(NONCE_BYTES + _TAG_BYTES)


def seal(key: DataKey, plaintext: bytes, context: str) -> bytes:
    header = bytes([VERSION]) + key.key_id.bytes
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key.material).encrypt(nonce, plaintext, header + context.encode())


def unseal(key: DataKey, blob: bytes, context: str) -> bytes:
    if key_id_of(blob) != key.key_id:
        raise TamperedCiphertext(f"ciphertext names key {key_id_of(blob)}, not {key.key_id}")
    header, nonce = blob[:HEADER_BYTES], blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return AESGCM(key.material).decrypt(
            nonce, blob[HEADER_BYTES + NONCE_BYTES :], header + context.encode()
        )
    except InvalidTag:
        raise TamperedCiphertext(f"ciphertext does not authenticate for {context.split(':')[0]}") from None


@dataclass(frozen=True)
class MasterVersion:
    """One version of the master key ring as stored: a pending version is known for
    unwrapping but not yet used to wrap (``hub/vault/master.py`` says how it is stored)."""

    number: int
    secret: bytes = field(repr=False)
    pending: bool = False


@dataclass(frozen=True)
class VersionInfo:
    number: int
    key_id: str  # the fingerprint stored next to each data key it wraps
    pending: bool
    current: bool


RingSource = Callable[[], tuple[Sequence[MasterVersion], bytes | None]]
"""Reads the ring again from where it is kept: its versions and the blind-index root."""


class _Version:
    def __init__(self, stored: MasterVersion) -> None:
        if len(stored.secret) < KEY_BYTES:
            raise ValueError(f"the master key must have at least {KEY_BYTES} bytes")
        self.number, self.pending = stored.number, stored.pending
        self.kek = AESGCM(_derive(stored.secret, b"hub-vault/key-encryption/v1"))
        self.key_id = hashlib.sha256(_derive(stored.secret, b"hub-vault/master-id/v1")).hexdigest()[:16]


class MasterKey:
    """The master key ring: every version that may have wrapped a stored data key, and the
    blind-index root. The secrets themselves are not kept, only what derives from them.

    Rotation changes the *wrapping* only. The current version (the highest that is not
    pending) wraps new data keys; any version of the ring unwraps, found by the fingerprint
    (``key_id``) stored with each wrapped key. Blind indexes and ``subject_ref`` are lookup
    keys stored in every service's rows, and the registry and identity must derive the
    same ones at the same moment in every replica; so they derive from one stable root,
    computed from version 1's secret and kept in the ring's index file once version 1 may
    be retired (``blind_index_root``). That file cannot unwrap anything (HKDF is one-way).
    Changing the index root would orphan every stored index and is not what rotation does.

    ``MasterKey(secret)`` is a ring of one version. A ring with a ``source`` reads itself
    again when it meets a version it does not know, or one it still thinks pending (another
    process promoted it), and before wrapping once its view is ``refresh_s`` old: so the
    replicas of a service follow a rotation without a restart.
    """

    def __init__(
        self,
        secret: bytes | Iterable[MasterVersion],
        *,
        index_root: bytes | None = None,
        source: RingSource | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._source, self._refresh_s = source, refresh_s
        self._index_root = b""
        stored = [MasterVersion(1, secret)] if isinstance(secret, bytes) else list(secret)
        self._use(stored, index_root)

    def _use(self, stored: Sequence[MasterVersion], index_root: bytes | None) -> None:
        versions = [_Version(version) for version in stored]
        if len({version.number for version in versions}) != len(versions):
            raise ValueError("the master key ring names a version twice")
        active = [version for version in versions if not version.pending]
        if not active:
            raise ValueError("the master key ring has no current version, only pending ones")
        first = next((version for version in stored if version.number == 1), None)
        derived = None if first is None else blind_index_root(first.secret)
        root = index_root if index_root is not None else derived
        if root is None:
            raise ValueError("without version 1 the ring needs its blind-index root (the index file)")
        if derived is not None and not hmac.compare_digest(derived, root):
            raise ValueError("the blind-index root does not belong to master key version 1")
        if self._index_root and not hmac.compare_digest(self._index_root, root):
            raise ValueError("the blind-index root changed: every stored blind index would be lost")
        self._versions = {version.key_id: version for version in versions}
        self._current = max(active, key=lambda version: version.number)
        self._index_root = root
        self._loaded_at = time.monotonic()

    def __repr__(self) -> str:
        return f"MasterKey(v{self._current.number} {self.key_id})"

    @property
    def key_id(self) -> str:
        """The current version's fingerprint: stored next to each key it wraps."""
        return self._current.key_id

    @property
    def version(self) -> int:
        return self._current.number

    def versions(self) -> list[VersionInfo]:
        return [
            VersionInfo(v.number, v.key_id, v.pending, v is self._current)
            for v in sorted(self._versions.values(), key=lambda v: v.number)
        ]

    def reload(self) -> None:
        """Read the ring again from its source (a ring built in memory has none)."""
        if self._source is not None:
            self._use(*self._source())

    def knows(self, master_key_id: str) -> bool:
        """Whether a key wrapped by ``master_key_id`` can be unwrapped here; an unknown or
        pending version first makes the ring read itself again."""
        version = self._versions.get(master_key_id)
        if version is None or version.pending:
            self._reload_quietly(min_age_s=_RELOAD_MIN_S)
        return master_key_id in self._versions

    def wrap(self, key: DataKey) -> bytes:
        return self.wrap_current(key)[1]

    def wrap_current(self, key: DataKey) -> tuple[str, bytes]:
        """``key`` wrapped by the current version, and that version's fingerprint (one
        call, so the two agree even if the ring reloads)."""
        self._reload_quietly(min_age_s=self._refresh_s)
        current, nonce = self._current, os.urandom(NONCE_BYTES)
        return current.key_id, nonce + current.kek.encrypt(nonce, key.material, _wrap_context(key.key_id))

    def unwrap(self, key_id: uuid.UUID, wrapped: bytes, master_key_id: str | None = None) -> DataKey:
        """With the version ``master_key_id`` names (the current one if not given)."""
        version = self._current if master_key_id is None else self._versions.get(master_key_id)
        if version is None:
            raise TamperedCiphertext(
                f"wrapped data key {key_id}: master key {master_key_id} is not in the ring"
            )
        try:
            material = version.kek.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_context(key_id)
            )
        except InvalidTag:
            raise TamperedCiphertext(f"wrapped data key {key_id} does not authenticate") from None
        return DataKey(key_id, material)

    def blind_index(self, purpose: str, value: str) -> str:
        """A keyed hash to find a value by equality without storing it; one key per purpose,
        so an index of one table cannot be joined with another's."""
        key = hmac.new(self._index_root, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def subject_ref(self, vn: str) -> str:
        """The vault reference of the person with this AHVN13 (see the module docstring)."""
        return f"subject:{self.blind_index('vault.subject', vn)}"

    def _reload_quietly(self, *, min_age_s: float) -> None:
        if self._source is None or time.monotonic() - self._loaded_at < min_age_s:
            return
        try:
            self.reload()
        except (OSError, ValueError, HubError) as error:
            # A file half-swapped by the platform, a typo by an operator: the ring this
            # process has keeps working, and the next attempt waits its turn.
            self._loaded_at = time.monotonic()
            log.warning("vault master key ring not reloaded, keeping versions %s: %s", self._numbers(), error)

    def _numbers(self) -> list[int]:
        return sorted(version.number for version in self._versions.values())


def blind_index_root(version_1_secret: bytes) -> bytes:
    """The root of every blind index: derived from version 1's secret, stable for good."""
    return _derive(version_1_secret, b"hub-vault/blind-index/v1")


def case_ref(case_id: str) -> str:
    return f"case:{case_id}"


def citizen_ref(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(secret)


def _wrap_context(key_id: uuid.UUID) -> bytes:
    # Binds a wrapped key to its id: swapping two rows' wrapped keys fails to unwrap.
    return b"hub-vault/data-key/v1:" + key_id.bytes
