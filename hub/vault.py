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
import os
import uuid
from dataclasses import dataclass

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


class MasterKey:
    """The root secret's derived keys; the secret itself is not kept."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"the master key must have at least {KEY_BYTES} bytes")
        self._kek = AESGCM(_derive(secret, b"hub-vault/key-encryption/v1"))
        self._index_root = _derive(secret, b"hub-vault/blind-index/v1")
        # Stored next to each wrapped key: a process with another master key says so clearly.
        self.key_id = hashlib.sha256(_derive(secret, b"hub-vault/master-id/v1")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey({self.key_id})"

    def wrap(self, key: DataKey) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, key.material, _wrap_context(key.key_id))

    def unwrap(self, key_id: uuid.UUID, wrapped: bytes) -> DataKey:
        try:
            material = self._kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_context(key_id))
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


def case_ref(case_id: str) -> str:
    return f"case:{case_id}"


def citizen_ref(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(secret)


def _wrap_context(key_id: uuid.UUID) -> bytes:
    # Binds a wrapped key to its id: swapping two rows' wrapped keys fails to unwrap.
    return b"hub-vault/data-key/v1:" + key_id.bytes
