"""Event contracts of the Lucerne service hub.

Depends on pydantic (and email-validator) only, so partners can import it on
their own. ``contracts.schemas`` (JSON Schema export) is imported on demand,
which keeps ``python -m contracts.schemas`` free of runpy's double-import warning.
"""

from contracts.base import Contract, ContractModel
from contracts.catalog import CATALOG, contract_for, parse_data, serialize_data
from contracts.ech import (
    KRIENS,
    LUCERNE,
    Address,
    Ahvn13,
    Contact,
    Language,
    LocalPersonId,
    MemberClass,
    Municipality,
    ParticipantId,
    ParticipantIdStr,
    Person,
    PersonName,
    Sector,
    Sex,
    ahvn13_check_digit,
    is_valid_ahvn13,
)
from contracts.envelope import Action, Envelope, header_value
from contracts.errors import (
    ContractError,
    ContractViolation,
    EnvelopeError,
    UnknownEventType,
)
from contracts.identity import (
    IssuedPseudonym,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
)
from contracts.notification import (
    Channel,
    DeliveryStatus,
    NotificationRequested,
    NotificationStatusChanged,
)
from contracts.relocation import (
    ArrivalRegistered,
    CaseCompleted,
    CaseRejected,
    DepartureConfirmed,
    MoveReported,
    MoveReportedDelivery,
    PseudonymizedPerson,
    TaxRecordUpdated,
)

__all__ = [
    "CATALOG",
    "KRIENS",
    "LUCERNE",
    "Action",
    "Address",
    "Ahvn13",
    "ArrivalRegistered",
    "CaseCompleted",
    "CaseRejected",
    "Channel",
    "Contact",
    "Contract",
    "ContractError",
    "ContractModel",
    "ContractViolation",
    "DeliveryStatus",
    "DepartureConfirmed",
    "Envelope",
    "EnvelopeError",
    "IssuedPseudonym",
    "Language",
    "LocalPersonId",
    "MemberClass",
    "MoveReported",
    "MoveReportedDelivery",
    "Municipality",
    "NotificationRequested",
    "NotificationStatusChanged",
    "ParticipantId",
    "ParticipantIdStr",
    "Person",
    "PersonName",
    "PseudonymizedPerson",
    "PseudonymsIssued",
    "PseudonymsRequested",
    "Recipient",
    "Sector",
    "Sex",
    "TaxRecordUpdated",
    "UnknownEventType",
    "ahvn13_check_digit",
    "contract_for",
    "header_value",
    "is_valid_ahvn13",
    "parse_data",
    "serialize_data",
]
