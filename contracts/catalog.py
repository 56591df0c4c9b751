"""The catalogue of every event type the hub knows, and data (de)serialisation."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import ValidationError

from contracts.base import Contract
from contracts.errors import ContractViolation, UnknownEventType

__all__ = ["CATALOG", "contract_for", "parse_data", "serialize_data"]

# Every module that declares event contracts. A contract joins the catalogue by being
# defined in one of them: adding an event type needs no edit here.
_CONTRACT_MODULES = (
    "contracts.relocation",
    "contracts.building",
    "contracts.case",
    "contracts.identity",
    "contracts.admin",
    "contracts.subscriptions",
    "contracts.notification",
    "contracts.audit",
)


def _declared_contracts() -> tuple[type[Contract], ...]:
    found: list[type[Contract]] = []
    for module_name in _CONTRACT_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Contract)
                and value is not Contract
                and value.__module__ == module_name
                and "event_type" in vars(value)
            ):
                found.append(value)
    return tuple(found)


_CONTRACTS = _declared_contracts()


def _build(contracts: tuple[type[Contract], ...]) -> Mapping[str, type[Contract]]:
    catalog: dict[str, type[Contract]] = {}
    for contract in contracts:
        if contract.event_type in catalog:
            raise RuntimeError(f"event type {contract.event_type} is declared twice")
        catalog[contract.event_type] = contract
    # Read-only: every consumer trusts the catalogue; nothing may patch it at runtime.
    return MappingProxyType(catalog)


CATALOG: Mapping[str, type[Contract]] = _build(_CONTRACTS)

_VERSIONED = re.compile(r"^(?P<family>.+)\.(?P<version>v[0-9]+)$")


def contract_for(event_type: str) -> type[Contract]:
    """The contract class of ``event_type``; raises ``UnknownEventType``."""
    contract = CATALOG.get(event_type)
    if contract is not None:
        return contract
    versioned = _VERSIONED.match(event_type)
    if versioned is not None:
        family, version = versioned.group("family", "version")
        known = _versions_of(family)
        if known:
            # A known family: the producer is ahead of (or behind) this consumer.
            raise UnknownEventType(f"unknown version {version} of {family}; known: {', '.join(known)}")
    # repr() and truncation: the type may come from an untrusted header.
    raise UnknownEventType(f"unknown event type {event_type[:200]!r}")


def _versions_of(family: str) -> list[str]:
    versions = []
    for event_type in CATALOG:
        versioned = _VERSIONED.match(event_type)
        if versioned is not None and versioned.group("family") == family:
            versions.append(versioned.group("version"))
    return sorted(versions, key=lambda version: int(version[1:]))


def parse_data(event_type: str, value: bytes) -> Contract:
    """Validate a record value (JSON bytes) against the contract of ``event_type``.

    Raises ``UnknownEventType`` or ``ContractViolation``; the latter never
    quotes the input, which may hold personal data.
    """
    contract = contract_for(event_type)
    try:
        return contract.model_validate_json(value)
    except ValidationError as error:
        if any(detail["type"] == "json_invalid" for detail in error.errors(include_input=False)):
            raise ContractViolation(f"invalid data for {event_type}: value is not JSON") from None
        # "from None": the chained ValidationError would print the input in tracebacks.
        raise ContractViolation.from_validation_error(event_type, error) from None


def serialize_data(data: Contract) -> bytes:
    """Compact JSON of ``data``, the record value in Kafka binary mode."""
    return data.model_dump_json().encode("utf-8")
