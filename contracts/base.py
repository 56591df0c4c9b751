"""Base classes shared by every contract.

Contracts are frozen and closed: a consumer must never see a half-changed
event, and an unknown field is a producer bug we want to hear about at once
rather than silently drop.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["EVENT_TYPE_PATTERN", "SCHEMA_BASE_URI", "SCHEMA_URN_PREFIX", "Contract", "ContractModel"]

# Reverse-DNS, lowercase, hyphenated segments, ending in the major version.
# The version lives in the type (not in a separate attribute) so that routing
# and the catalogue need only one key.
EVENT_TYPE_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+\.v[0-9]+$"

# Where the JSON Schemas are published: ``<SCHEMA_BASE_URI><event type>.json`` is the file
# ``docs/partners/schemas/<event type>.json``, so a schema's ``$id`` (and an event's
# ``dataschema``) names a document a partner can fetch, and relative references resolve.
SCHEMA_BASE_URI = "https://hub.stadtluzern.ch/schemas/"
# The form ``dataschema`` took before the schemas were published. The hub never reads an
# incoming ``dataschema``, so events that still carry it are accepted as before.
SCHEMA_URN_PREFIX = "urn:ch:lu:hub:schema:"

_CLOSED_AND_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ContractModel(BaseModel):
    """Frozen, closed base for value objects nested inside event data."""

    model_config = _CLOSED_AND_FROZEN


class Contract(BaseModel):
    """Frozen, closed base for the *data* of one event type.

    Subclasses set ``event_type`` (e.g. ``ch.lu.hub.relocation.move-reported.v1``);
    an incompatible change means a new class with a new ``vN``.
    """

    model_config = _CLOSED_AND_FROZEN

    event_type: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Fail at import time, not on the first message, if a type is misspelt.
        event_type = cls.__dict__.get("event_type")
        if event_type is not None and not re.fullmatch(EVENT_TYPE_PATTERN, event_type):
            raise TypeError(f"{cls.__name__}.event_type {event_type!r} is not a versioned type")

    @classmethod
    def dataschema(cls) -> str:
        """The CloudEvents ``dataschema`` URI, the ``$id`` of the published JSON Schema; it
        changes with every version."""
        return f"{SCHEMA_BASE_URI}{cls.event_type}.json"
