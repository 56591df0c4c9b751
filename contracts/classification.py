"""How sensitive each field of each contract is: public, internal, confidential, secret.

The hub encrypts confidential and secret values at rest with the data key of the person
they belong to (``hub/vault.py``), so that destroying that key erases them everywhere;
public and internal values stay readable for operations and statistics.

Classes (after the Federal Act on Data Protection and the canton's information
classification):

* ``public``: may be published: partner ids, legal bases, event type names.
* ``internal``: the hub's working data, no personal data on its own: municipalities
  (BFS numbers), statuses, dates of processing steps, languages.
* ``confidential``: personal data: names, date of birth, sex, addresses, email, phone,
  local register ids, pseudonyms, and free text a partner or citizen wrote (it may name
  anyone).
* ``secret``: the AHVN13: it never leaves the identity service.

A field whose type is a nested contract model is classified by that model's own table;
a list of models (``recipients``) or an open dict (``placeholders``) is one leaf. Every
field of every catalogued contract is listed (a unit test enforces it); a value this
table does not know is treated as secret, so an unclassified field fails closed.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey, RevokePartnerKey
from contracts.audit import AuditHeadAnchored
from contracts.building import (
    BuildingProject,
    ConsultationRequested,
    EnvironmentOpinionGiven,
    InsuranceOpinionGiven,
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
from contracts.ech import Address, Contact, Jurisdiction, LocalPersonId, Municipality, Person
from contracts.identity import (
    IssuedPseudonym,
    PartnerKeyRegistered,
    PartnerKeyRevoked,
    PartnerRegistered,
    PartnerStatusChanged,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
)
from contracts.notification import NotificationRequested, NotificationStatusChanged
from contracts.relocation import ArrivalRegistered, DepartureConfirmed, MoveReported, TaxRecordUpdated
from contracts.subscriptions import SetSubscription

__all__ = ["Classification", "classification_of", "classified_paths", "merge", "split"]


class Classification(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"

    @property
    def encrypted_at_rest(self) -> bool:
        return self in (Classification.CONFIDENTIAL, Classification.SECRET)


PUB, INT, CONF, SEC = (
    Classification.PUBLIC,
    Classification.INTERNAL,
    Classification.CONFIDENTIAL,
    Classification.SECRET,
)
NESTED = None  # the field's own model decides, field by field

_PERSON_FIELDS = {"official_name": CONF, "first_name": CONF, "sex": CONF, "date_of_birth": CONF}
_PARTNER_KEY = {"partner_id": PUB, "key_id": PUB, "algorithm": PUB, "public_key": PUB}

FIELDS: Mapping[type[BaseModel], Mapping[str, Classification | None]] = {
    # eCH value objects
    Person: {"vn": SEC, "local_person_id": NESTED, **_PERSON_FIELDS},
    LocalPersonId: {"category": INT, "id": CONF},
    Municipality: {"bfs_number": INT, "name": INT, "canton": INT},
    Address: {"street": CONF, "house_number": CONF, "postal_code": CONF, "town": CONF, "country": CONF},
    Contact: {"email": CONF, "phone": CONF, "language": INT},
    # relocation
    MoveReported: {
        "person": NESTED,
        "contact": NESTED,
        "departure": NESTED,
        "arrival": NESTED,
        "previous_address": NESTED,
        "new_address": NESTED,
        "move_date": CONF,  # when this person moves: a fact of their life, not of the process
    },
    DepartureConfirmed: {"municipality": NESTED, "confirmed_on": INT, "remarks": CONF},
    ArrivalRegistered: {"municipality": NESTED, "registered_on": INT, "remarks": CONF},
    TaxRecordUpdated: {"updated_on": INT},
    # building permit
    ConsultationRequested: {
        "applicant": NESTED,
        "contact": NESTED,
        "parcel": NESTED,
        "project": NESTED,
        "dossier_number": INT,
    },
    Parcel: {"municipality": NESTED, "parcel_number": CONF, "egrid": CONF},  # ties a person to land
    BuildingProject: {"description": CONF, "address": NESTED, "building_volume_m3": INT, "heating": INT},
    EnvironmentOpinionGiven: {"opinion": INT, "conditions": CONF},
    InsuranceOpinionGiven: {"opinion": INT, "conditions": CONF},
    # case events
    CaseDelivery: {
        "case_type": INT,
        "event_type_delivered": INT,
        "recipient": PUB,
        "purpose": PUB,
        "legal_basis": PUB,
        "subject": NESTED,
        "data": CONF,  # minimised, but still the person's data
    },
    DeliveredPerson: {"sector_pseudonym": CONF, "local_person_id": NESTED, **_PERSON_FIELDS},
    CaseCompleted: {"case_type": INT, "completed_at": INT, "milestones": INT},
    CaseRejected: {"rejected_by": PUB, "reason": CONF},
    CaseActionRequired: {"requested_by": PUB, "action": CONF, "due_on": INT},
    CaseEscalated: {"case_type": INT, "deadline": INT, "missing_milestones": INT},
    CasePartyMissing: {"case_type": INT, "slot": INT, "role": INT, "jurisdiction": NESTED, "reason": INT},
    # audit
    AuditHeadAnchored: {"seq": INT, "entry_hash": INT, "anchored_at": INT},
    # identity
    PseudonymsRequested: {"person": NESTED, "recipients": NESTED, "citizen_pseudonym": INT},
    Recipient: {"partner_id": PUB, "sector": PUB},
    PseudonymsIssued: {"match": INT, "pseudonyms": CONF, "citizen_id": CONF},
    IssuedPseudonym: {"partner_id": PUB, "sector": PUB, "pseudonym": CONF, "local_person_id": NESTED},
    PartnerRegistered: {
        "partner_id": PUB,
        "name": PUB,
        "sector": PUB,
        "roles": INT,
        "jurisdiction": NESTED,
        "sedex_id": INT,
        "local_person_id_category": INT,
        "status": INT,
    },
    Jurisdiction: {"level": INT, "bfs_number": INT, "canton": INT},
    PartnerStatusChanged: {"partner_id": PUB, "status": INT, "reason": INT},
    PartnerKeyRegistered: {**_PARTNER_KEY, "valid_from": INT, "valid_until": INT},
    PartnerKeyRevoked: {"partner_id": PUB, "key_id": PUB, "revoked_at": INT, "reason": INT},
    # administration
    RegisterPartner: {
        "partner_id": PUB,
        "name": PUB,
        "sector": PUB,
        "roles": INT,
        "jurisdiction": NESTED,
        "sedex_id": INT,
        "local_person_id_category": INT,
    },
    ChangePartnerStatus: {"partner_id": PUB, "status": INT, "reason": INT},
    RegisterPartnerKey: {**_PARTNER_KEY, "valid_from": INT, "valid_until": INT},
    RevokePartnerKey: {"partner_id": PUB, "key_id": PUB, "reason": INT},
    SetSubscription: {
        "partner_id": PUB,
        "subscribed_event_type": PUB,
        "case_type": PUB,
        "purpose": PUB,
        "legal_basis": PUB,
        "legal_basis_url": PUB,
        "fields": INT,
        "retention_days": INT,
        "status": INT,
        "scope": INT,
        "slot": INT,
    },
    # notifications
    NotificationRequested: {
        "notification_id": INT,
        "channel": INT,
        "recipient": CONF,
        "language": INT,
        "template": INT,
        "placeholders": CONF,  # names, places, reasons
        "mandatory": INT,
        "citizen_id": CONF,
        "phone": CONF,
        "inbox": INT,
    },
    NotificationStatusChanged: {
        "notification_id": INT,
        "channel": INT,
        "status": INT,
        "template": INT,
        "detail": CONF,  # a channel's error text may quote the address
    },
}


def _nested_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    """The model a field holds (``X`` or ``X | None``); None for anything else."""
    annotation = model.model_fields[field].annotation
    candidates = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    found = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return found[0] if len(found) == 1 else None


def classified_paths(model: type[BaseModel]) -> dict[str, Classification]:
    """Every leaf of ``model`` as a dotted path with its class; raises ``KeyError`` for a gap."""
    table = FIELDS[model]
    paths: dict[str, Classification] = {}
    for name in model.model_fields:
        level = table[name]
        nested = _nested_model(model, name)
        if level is None:
            if nested is None:
                # A list of models: one leaf, as sensitive as its most sensitive field.
                paths[name] = _list_level(model, name)
                continue
            paths |= {f"{name}.{path}": inner for path, inner in classified_paths(nested).items()}
        else:
            paths[name] = level
    return paths


def _list_level(model: type[BaseModel], name: str) -> Classification:
    element = next(
        (a for a in typing.get_args(model.model_fields[name].annotation) if isinstance(a, type)), None
    )
    if element is None or not issubclass(element, BaseModel):
        raise KeyError(f"{model.__name__}.{name} is neither a model nor classified")
    levels = list(Classification)
    return max(classified_paths(element).values(), key=levels.index)


def classification_of(model: type[BaseModel], path: str) -> Classification:
    """The class of one dotted path; unknown paths are secret (fail closed)."""
    return classified_paths(model).get(path, Classification.SECRET)


def split(model: type[BaseModel] | None, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` (a model's JSON dump) as (readable, protected): what stays in plain columns,
    what is encrypted. ``model`` None, or a key the model does not have: protected."""
    readable: dict[str, Any] = {}
    protected: dict[str, Any] = {}
    table = FIELDS.get(model) if model is not None else None
    for key, value in data.items():
        if model is None or table is None or key not in table:
            protected[key] = value
            continue
        level = table[key]
        nested = _nested_model(model, key)
        if level is None and nested is not None and isinstance(value, Mapping):
            inner_readable, inner_protected = split(nested, value)
            if inner_readable:
                readable[key] = inner_readable
            if inner_protected:
                protected[key] = inner_protected
            continue
        if level is None:
            level = _list_level(model, key) if nested is None else Classification.SECRET
        (protected if level.encrypted_at_rest else readable)[key] = value
    return readable, protected


def merge(readable: Mapping[str, Any], protected: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of ``split``: the two halves deep-merged back into one dict."""
    merged: dict[str, Any] = dict(readable)
    for key, value in protected.items():
        mine = merged.get(key)
        merged[key] = (
            merge(mine, value) if isinstance(mine, Mapping) and isinstance(value, Mapping) else value
        )
    return merged
