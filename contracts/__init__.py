"""Event contracts of the Lucerne service hub.

Depends on pydantic (and email-validator) only, so partners can import it on
their own. ``contracts.schemas`` (JSON Schema export) is imported on demand,
which keeps ``python -m contracts.schemas`` free of runpy's double-import warning.
"""

from contracts.base import Contract, ContractModel
from contracts.building import (
    BuildingProject,
    ConsultationRequested,
    EnvironmentOpinionGiven,
    InsuranceOpinionGiven,
    Opinion,
    Parcel,
)
from contracts.case import (
    CaseActionRequired,
    CaseCompleted,
    CaseDelivery,
    CaseEscalated,
    CasePartyMissing,
    CaseRejected,
    DeliveredPerson,
)
from contracts.catalog import CATALOG, contract_for, parse_data, serialize_data
from contracts.ech import (
    EMMEN,
    KRIENS,
    LUCERNE,
    ZUG,
    Address,
    Ahvn13,
    Canton,
    Contact,
    Jurisdiction,
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
    DepartureConfirmed,
    MoveReported,
    TaxRecordUpdated,
)
from contracts.subscriptions import SetSubscription

__all__ = [
    "CATALOG",
    "EMMEN",
    "KRIENS",
    "LUCERNE",
    "ZUG",
    "Action",
    "Address",
    "Ahvn13",
    "ArrivalRegistered",
    "BuildingProject",
    "Canton",
    "CaseActionRequired",
    "CaseCompleted",
    "CaseDelivery",
    "CaseEscalated",
    "CasePartyMissing",
    "CaseRejected",
    "Channel",
    "ConsultationRequested",
    "Contact",
    "Contract",
    "ContractError",
    "ContractModel",
    "ContractViolation",
    "DeliveredPerson",
    "DeliveryStatus",
    "DepartureConfirmed",
    "Envelope",
    "EnvelopeError",
    "EnvironmentOpinionGiven",
    "InsuranceOpinionGiven",
    "IssuedPseudonym",
    "Jurisdiction",
    "Language",
    "LocalPersonId",
    "MemberClass",
    "MoveReported",
    "Municipality",
    "NotificationRequested",
    "NotificationStatusChanged",
    "Opinion",
    "Parcel",
    "ParticipantId",
    "ParticipantIdStr",
    "Person",
    "PersonName",
    "PseudonymsIssued",
    "PseudonymsRequested",
    "Recipient",
    "Sector",
    "SetSubscription",
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
