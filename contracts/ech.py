"""Value objects after the Swiss eCH standards (simplified where noted).

eCH-0044 person identification, eCH-0007 municipalities, eCH-0010 postal
addresses, and X-Road style participant ids for the hub's members.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, EmailStr, Field, model_validator

from contracts._ahvn13 import Ahvn13, ahvn13_check_digit, is_valid_ahvn13
from contracts.base import ContractModel

__all__ = [
    "CANTONS",
    "EMMEN",
    "KRIENS",
    "LUCERNE",
    "ZUG",
    "Address",
    "Ahvn13",
    "Canton",
    "Contact",
    "Jurisdiction",
    "JurisdictionLevel",
    "Language",
    "LocalPersonId",
    "MemberClass",
    "Municipality",
    "ParticipantId",
    "ParticipantIdStr",
    "Person",
    "PersonName",
    "Sector",
    "Sex",
    "ahvn13_check_digit",
    "is_valid_ahvn13",
]

PersonName = Annotated[str, Field(min_length=1, max_length=100)]


class Sex(StrEnum):
    """eCH-0044 sexType."""

    MALE = "1"
    FEMALE = "2"
    UNKNOWN = "3"


class LocalPersonId(ContractModel):
    """eCH-0044 namedPersonId: an id in one register, e.g. ``LU.EWK``."""

    category: str = Field(min_length=1, max_length=20)
    id: str = Field(min_length=1, max_length=36)


class Person(ContractModel):
    """eCH-0044 personIdentification.

    Simplification: eCH-0044 allows a partial date of birth (year or
    year-month); the hub requires the full date.
    """

    vn: Ahvn13
    local_person_id: LocalPersonId | None = None
    official_name: PersonName
    first_name: PersonName
    sex: Sex
    date_of_birth: date


class Municipality(ContractModel):
    """eCH-0007 municipality, identified by its BFS number."""

    bfs_number: int = Field(ge=1, le=9999)
    name: str = Field(min_length=1, max_length=40)
    canton: str = Field(pattern=r"^[A-Z]{2}$")


KRIENS = Municipality(bfs_number=1059, name="Kriens", canton="LU")
LUCERNE = Municipality(bfs_number=1061, name="Luzern", canton="LU")
EMMEN = Municipality(bfs_number=1024, name="Emmen", canton="LU")
ZUG = Municipality(bfs_number=1711, name="Zug", canton="ZG")

# The 26 cantons by their official two-letter abbreviations (eCH-0007 cantonAbbreviation).
CANTONS = frozenset(
    [
        "AG",
        "AI",
        "AR",
        "BE",
        "BL",
        "BS",
        "FR",
        "GE",
        "GL",
        "GR",
        "JU",
        "LU",
        "NE",
        "NW",
        "OW",
        "SG",
        "SH",
        "SO",
        "SZ",
        "TG",
        "TI",
        "UR",
        "VD",
        "VS",
        "ZG",
        "ZH",
    ]
)


def _is_canton(value: str) -> str:
    if value not in CANTONS:
        raise ValueError(f"{value!r} is not a Swiss canton abbreviation")
    return value


Canton = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_is_canton)]
"""A canton's two-letter abbreviation (``LU``, ``ZG``)."""

JurisdictionLevel = Literal["municipality", "canton", "federal"]


class Jurisdiction(ContractModel):
    """Where a partner acts for the state: one municipality (its BFS number, eCH-0007, and
    its canton), one canton, or the Confederation.

    A case's party slots name the jurisdiction they need (the arrival municipality, the
    tax office of the arrival canton); a partner fills a slot only with the role and the
    jurisdiction it asks for, so a municipality never acts or reads for another one.
    """

    level: JurisdictionLevel
    bfs_number: int | None = Field(default=None, ge=1, le=9999, description="municipality level only")
    canton: Canton | None = Field(default=None, description="municipality and canton levels")

    @model_validator(mode="after")
    def _fits_its_level(self) -> Self:
        wanted = {"municipality": (True, True), "canton": (False, True), "federal": (False, False)}
        needs_bfs, needs_canton = wanted[self.level]
        if (self.bfs_number is not None) != needs_bfs:
            raise ValueError(f"a {self.level} jurisdiction {'needs' if needs_bfs else 'has no'} bfs_number")
        if (self.canton is not None) != needs_canton:
            raise ValueError(f"a {self.level} jurisdiction {'needs' if needs_canton else 'has no'} canton")
        return self

    def __str__(self) -> str:
        """``municipality 1061 (LU)``, ``canton LU``, ``federal``: how listings and timelines name it."""
        if self.level == "municipality":
            return f"municipality {self.bfs_number} ({self.canton})"
        return f"canton {self.canton}" if self.level == "canton" else "federal"


# Liechtenstein shares the Swiss four-digit postal codes.
_FOUR_DIGIT_POSTAL_CODES = frozenset({"CH", "LI"})


class Address(ContractModel):
    """eCH-0010 postal address, simplified to what the relocation flow needs."""

    street: str = Field(min_length=1, max_length=60)
    house_number: str | None = Field(default=None, min_length=1, max_length=12)
    postal_code: str = Field(min_length=1, max_length=15)
    town: str = Field(min_length=1, max_length=40)
    country: str = Field(default="CH", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")

    @model_validator(mode="after")
    def _swiss_postal_code_has_four_digits(self) -> Self:
        four_digits = re.fullmatch("[0-9]{4}", self.postal_code) is not None
        if self.country in _FOUR_DIGIT_POSTAL_CODES and not four_digits:
            raise ValueError("postal_code must be 4 digits for CH and LI")
        return self


class Language(StrEnum):
    DE = "de"
    FR = "fr"
    IT = "it"
    EN = "en"


class Contact(ContractModel):
    email: EmailStr
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{1,14}$", description="E.164")
    language: Language = Language.DE


class MemberClass(StrEnum):
    FEDERAL = "FED"
    CANTON = "CAN"
    MUNICIPALITY = "MUN"
    THIRD_PARTY = "COM"


# No "/" (the separator), no ":" (the id is embedded in URNs), no spaces.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_Segment = Annotated[str, Field(pattern=rf"^{_SEGMENT}$")]


class ParticipantId(ContractModel):
    """X-Road style id of a hub member, e.g. ``CH/MUN/1061/einwohnerdienste``."""

    instance: _Segment
    member_class: MemberClass
    member_code: _Segment
    subsystem: _Segment

    def __str__(self) -> str:
        parts = (
            self.instance,
            self.member_class.value,
            self.member_code,
            self.subsystem,
        )
        return "/".join(parts)

    @classmethod
    def parse(cls, s: str) -> ParticipantId:
        """Inverse of ``str()``; raises ``ValueError`` on a malformed id."""
        parts = s.split("/")
        if len(parts) != 4:
            raise ValueError("participant id must be instance/member_class/member_code/subsystem")
        fields = dict(
            zip(
                ("instance", "member_class", "member_code", "subsystem"),
                parts,
                strict=True,
            )
        )
        # pydantic's ValidationError is a ValueError, as the signature promises.
        return cls.model_validate(fields)


_MEMBER_CLASSES = "|".join(member_class.value for member_class in MemberClass)

ParticipantIdStr = Annotated[str, Field(pattern=rf"^{_SEGMENT}/({_MEMBER_CLASSES})/{_SEGMENT}/{_SEGMENT}$")]
"""A participant id kept in its string form; it parses as ``ParticipantId``."""


class Sector(StrEnum):
    """Administrative sectors; each gets its own pseudonym for a person."""

    RESIDENT_REGISTRATION = "resident-registration"
    TAX = "tax"
    SOCIAL_INSURANCE = "social-insurance"
    STATISTICS = "statistics"
    BUILDING = "building"
    ENVIRONMENT = "environment"
    INSURANCE = "insurance"
    CITIZEN_SERVICES = "citizen-services"
    """The hub's own services to the citizen: the key of their preferences and inbox."""
