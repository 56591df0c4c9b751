"""Which ingress refusals the registry seals into the audit chain, and whether the sender was proven.

The ingress route's dead letters pass through the hook ``recorder`` builds
(``hub.runtime.consumer.Route.on_refused``): it runs in the dead letter's transaction, on
the connection the runtime hands it, over which it builds the registry's unit of work.
Every refusal of the event itself is recorded; a failure of the hub (a bug that used up
its retries) is not a decision about the event and stays in ``dead_letters`` only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts import ContractError, Envelope
from hub.audit.refusals import ReasonClasses, reason_class, refusal_entry
from hub.errors import MessageTooLarge, PermanentError, UnknownCase
from hub.security.signing import ReplayRefused, SignatureRefused
from services.registry.errors import NotAParty, NotAuthorized
from services.registry.model import claimed_partner
from services.registry.partner_keys import proves_sender
from services.registry.ports import UnitOfWork

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

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

# Builds the registry's unit of work on the dead letter's connection (the adapter's business).
UnitOfWorkOn = Callable[[Any], UnitOfWork]


async def signature_held(uow: UnitOfWork, record: ConsumerRecord[bytes, bytes], error: BaseException) -> bool:
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
    sender = claimed_partner(envelope.source)
    if envelope.sigkeyid is None or envelope.signature is None or sender is None:
        return False
    key = await uow.partner_keys.find(envelope.sigkeyid)
    if key is None:
        return False
    return proves_sender(record.headers, record.value or b"", key, sender, dt.datetime.now(dt.UTC))


async def record_refusal(uow: UnitOfWork, record: ConsumerRecord[bytes, bytes], error: BaseException) -> None:
    """One ``refused`` entry on the audit chain for a refused record; nothing for a failure of the hub."""
    found = reason_class(error, REASON_CLASSES)
    if found is None:
        return
    verified = await signature_held(uow, record, error)
    await uow.audit.append([refusal_entry(record, error, reason_class=found, sender_verified=verified)])


@dataclass(frozen=True)
class RefusalAudit:
    """The ingress route's dead-letter hook (``hub.runtime.deadletter.RefusalHook``):
    ``record_refusal`` in the dead letter's transaction, on its connection."""

    unit_of_work_on: UnitOfWorkOn

    async def __call__(self, conn: Any, record: ConsumerRecord[bytes, bytes], error: BaseException) -> None:
        await record_refusal(self.unit_of_work_on(conn), record, error)


def recorder(unit_of_work_on: UnitOfWorkOn) -> RefusalAudit:
    return RefusalAudit(unit_of_work_on)
