"""Which ingress refusals the registry seals into the audit chain, and whether the sender was proven.

The ingress route's dead letters pass through ``recorder()`` (hub/audit/refusals.py). Every
refusal of the event itself is recorded; a failure of the hub (a bug that used up its
retries) is not a decision about the event and stays in ``dead_letters`` only.
"""

from __future__ import annotations

import datetime as dt

from aiokafka import ConsumerRecord
from asyncpg import Connection

from contracts import ContractError, Envelope
from hub.audit.refusals import ReasonClasses, RefusalRecorder
from hub.errors import MessageTooLarge, PermanentError, UnknownCase
from hub.runtime.outbox import Transaction
from hub.runtime.service import service_source
from hub.security.signing import PublicKey, ReplayRefused, SignatureRefused, check_key_usable
from services.registry.handlers import PARTNER_SOURCE_PREFIX, NotAParty, NotAuthorized
from services.registry.partner_keys import find_key

# First match wins: subclasses before PermanentError, which catches the rest (an unknown
# case, a case opened twice, a type outside the case's process or the catalogue).
REASON_CLASSES: ReasonClasses = (
    (SignatureRefused, "signature"),
    (ReplayRefused, "replay-window"),
    (NotAParty, "not-a-party"),
    (NotAuthorized, "not-authorized"),
    (ContractError, "contract"),
    (MessageTooLarge, "too-large"),
    (UnknownCase, "unknown-case"),
    (PermanentError, "refused"),
)


async def signature_held(
    conn: Connection, record: ConsumerRecord[bytes, bytes], error: BaseException
) -> bool:
    """Whether a usable key of the claimed partner signed exactly this record.

    Checked here, apart from the refusal: a refusal before the signature check (unknown or
    suspended partner, a contract violation) or after it (replay window, role) does not
    say by itself whether the claim was proven. Refusals are rare; the check costs one
    key lookup and one Ed25519 verification, and none at all for a signature refusal.
    """
    if isinstance(error, SignatureRefused):
        return False
    try:
        envelope = Envelope.from_headers(record.headers)
    except ContractError:
        return False
    if envelope.sigkeyid is None or envelope.signature is None:
        return False
    if not envelope.source.startswith(PARTNER_SOURCE_PREFIX):
        return False
    key = await find_key(Transaction(conn, source=service_source("registry")), envelope.sigkeyid)
    if key is None:
        return False
    try:
        check_key_usable(
            key_id=key.key_id,
            owner=key.partner_id,
            sender=envelope.source.removeprefix(PARTNER_SOURCE_PREFIX),
            valid_from=key.valid_from,
            valid_until=key.valid_until,
            revoked_at=key.revoked_at,
            now=dt.datetime.now(dt.UTC),
        )
        PublicKey.from_base64(key.key_id, key.public_key).verify(record.headers, record.value or b"")
    except (SignatureRefused, ValueError):
        return False
    return True


def recorder() -> RefusalRecorder:
    return RefusalRecorder(REASON_CLASSES, signature_held)
