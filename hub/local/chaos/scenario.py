"""What the chaos run sends: relocation cases, their test persons, the poison records.

No I/O here: the same seed gives the same persons, case ids and poison positions, so a
failing run can be repeated. What a completed case must have caused is listed here too,
next to what causes it, so that the verification counts against one definition.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import uuid
from dataclasses import dataclass, replace

from contracts import (
    CaseCompleted,
    Channel,
    Contact,
    Envelope,
    Language,
    MoveReported,
    Person,
    Sex,
    ahvn13_check_digit,
)
from contracts.catalog import serialize_data
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.local.demo import KRIENS_OFFICE, LUCERNE_OFFICE, PORTAL, TAX_OFFICE, move_report
from hub.local.partner_client import sign_as
from hub.security.keyring import Keyring

Headers = tuple[tuple[str, bytes], ...]

AGENCIES = (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
# Per case and agency, one delivery of each: the move itself, then the completion.
DELIVERED_TYPES = (MoveReported.event_type, CaseCompleted.event_type)
# Per case, one notice per step, each by email and as an inbox copy (the citizen id is known).
CITIZEN_TEMPLATES = (
    "relocation.received",
    "relocation.departure-confirmed",
    "relocation.arrival-registered",
    "relocation.tax-record-updated",
    "relocation.completed",
)
NOTICE_CHANNELS = (Channel.EMAIL.value, Channel.INBOX.value)

_FIRST_NAMES = ("Anna", "Beat", "Chiara", "Daniel", "Elena", "Fabio", "Greta", "Hans", "Ines", "Jonas")
_OFFICIAL_NAMES = ("Muster", "Meier", "Keller", "Bucher", "Wyss", "Huber", "Frei", "Graf", "Kaufmann", "Roth")


@dataclass(frozen=True)
class Record:
    """A Kafka record as a partner sends it; resending the same bytes keeps its ``ce_id``."""

    key: bytes
    value: bytes
    headers: Headers

    @property
    def event_id(self) -> str:
        return next(value.decode() for name, value in self.headers if name == "ce_id")


@dataclass(frozen=True)
class Draft:
    """An event before its sender signs it: keys exist only once the hub has registered them."""

    sender: str  # partner id
    envelope: Envelope
    value: bytes

    @property
    def event_id(self) -> str:
        return self.envelope.id

    def signed(self, keyring: Keyring) -> Record:
        """Signed with the sender's key from ``keyring``."""
        headers = sign_as(keyring, self.sender, self.envelope.to_headers(), self.value)
        return Record(self.envelope.businessprocessid.encode(), self.value, tuple(headers))


@dataclass(frozen=True)
class CaseSpec:
    case_id: str
    draft: Draft


class PoisonKind(enum.Enum):
    NOT_JSON = "not-json"
    BAD_CHECK_DIGIT = "bad-ahvn13-check-digit"
    UNKNOWN_TYPE = "unknown-event-type"
    UNKNOWN_VERSION = "unknown-version"


@dataclass(frozen=True)
class Poison:
    kind: PoisonKind
    draft: Draft


# Names and birth date repeat after this many serials: a person further on is a look-alike
# (same names and birth date, another AHVN13) of an earlier one.
DISTINCT_PERSONS = 25_000


def chaos_person(serial: int) -> Person:
    """A distinct person per serial: own AHVN13, and names and birth date that rarely collide,
    so identity matches by AHVN13 and seldom flags a look-alike for review."""
    first12 = f"7569{serial:08d}"
    return Person(
        vn=first12 + str(ahvn13_check_digit(first12)),
        official_name=_OFFICIAL_NAMES[serial % len(_OFFICIAL_NAMES)],
        first_name=_FIRST_NAMES[(serial // len(_OFFICIAL_NAMES)) % len(_FIRST_NAMES)],
        sex=Sex.FEMALE if serial % 2 else Sex.MALE,
        date_of_birth=dt.date(1940, 1, 1) + dt.timedelta(days=serial % DISTINCT_PERSONS),
    )


def _portal_draft(data: MoveReported, case_id: str) -> Draft:
    envelope = Envelope.new(data, source=PARTNER_SOURCE_PREFIX + PORTAL, business_process_id=case_id)
    return Draft(PORTAL, envelope, serialize_data(data))


def relocation_case(run_id: str, serial: int) -> CaseSpec:
    case_id = f"eumzug-{run_id}-{serial:05d}"
    # An address of its own, so that each case's emails are its own in the SMTP sink too.
    contact = Contact(email=f"citizen-{run_id}-{serial:05d}@example.ch", language=Language.DE)
    report = move_report(chaos_person(serial)).model_copy(update={"contact": contact})
    return CaseSpec(case_id, _portal_draft(report, case_id))


def poison(kind: PoisonKind, run_id: str, serial: int) -> Poison:
    """A validly signed record the registry must dead-letter at once (a permanent error)."""
    report = move_report(chaos_person(900_000 + serial))
    draft = _portal_draft(report, f"poison-{run_id}-{serial:03d}")
    if kind is PoisonKind.NOT_JSON:
        return Poison(kind, replace(draft, value=b"{this is not JSON"))
    if kind is PoisonKind.BAD_CHECK_DIGIT:
        vn = report.person.vn
        wrong = vn[:12] + str((int(vn[12]) + 1) % 10)
        return Poison(kind, replace(draft, value=draft.value.replace(vn.encode(), wrong.encode())))
    family = MoveReported.event_type.rsplit(".", 2)[0]
    name = "move-retracted.v1" if kind is PoisonKind.UNKNOWN_TYPE else "move-reported.v9"
    return Poison(
        kind, replace(draft, envelope=draft.envelope.model_copy(update={"type": f"{family}.{name}"}))
    )


@dataclass(frozen=True)
class Stream:
    """The cases and poison records in the order the portal sends them."""

    run_id: str
    cases: tuple[CaseSpec, ...]
    poisons: tuple[Poison, ...]
    order: tuple[Draft, ...]


def build_stream(rng: random.Random, cases: int, poisons: int, *, first_serial: int = 1) -> Stream:
    """``cases`` relocation cases, with ``poisons`` poison records at random places among them,
    cycling through every kind of poison.

    ``first_serial`` numbers the cases' persons: streams sent one after another to the same
    hub start where the previous one ended, so every case moves a person the hub has not met.
    """
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex[:10]
    case_specs = tuple(
        relocation_case(run_id, serial) for serial in range(first_serial, first_serial + cases)
    )
    kinds = list(PoisonKind)
    bad = tuple(poison(kinds[index % len(kinds)], run_id, index) for index in range(poisons))
    order: list[Draft] = [case.draft for case in case_specs]
    for item in bad:
        order.insert(rng.randint(0, len(order)), item.draft)
    return Stream(run_id, case_specs, bad, tuple(order))
