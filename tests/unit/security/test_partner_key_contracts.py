"""The partner key commands and announcements (contracts.admin, contracts.identity)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import CATALOG, parse_data
from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.security.signing import SigningKey

PUBLIC = SigningKey.generate("k").public.base64
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _command(**changes: Any) -> RegisterPartnerKey:
    fields: dict[str, Any] = {"partner_id": "CH/MUN/1061/einwohnerdienste", "key_id": "lu-2026a"}
    return RegisterPartnerKey.model_validate(fields | {"public_key": PUBLIC} | changes)


def test_the_key_contracts_are_in_the_catalogue() -> None:
    assert {RegisterPartnerKey, RevokePartnerKey, PartnerKeyRegistered, PartnerKeyRevoked} <= set(
        CATALOG.values()
    )


def test_a_command_round_trips_as_json() -> None:
    command = _command(valid_from=START, valid_until=START + dt.timedelta(days=365))
    assert parse_data(command.event_type, command.model_dump_json().encode()) == command
    assert command.algorithm == "ed25519"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"valid_from": START, "valid_until": START}, "valid_until must be later than valid_from"),
        ({"valid_from": START.replace(tzinfo=None)}, "timezone"),
        ({"key_id": "no spaces"}, "key_id"),
        ({"key_id": "-leading-dash"}, "key_id"),
        ({"public_key": "AAAA"}, "public_key"),
        ({"algorithm": "rsa"}, "algorithm"),
    ],
    ids=["empty-window", "naive-time", "space-in-id", "leading-dash", "short-key", "other-algorithm"],
)
def test_malformed_commands_are_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        _command(**changes)


def test_an_announced_key_always_states_its_start() -> None:
    with pytest.raises(ValidationError, match="valid_from"):
        PartnerKeyRegistered(partner_id="CH/CAN/LU/eportal", key_id="p", public_key=PUBLIC)  # type: ignore[call-arg]
    announced = PartnerKeyRegistered(
        partner_id="CH/CAN/LU/eportal", key_id="p", public_key=PUBLIC, valid_from=START
    )
    assert announced.valid_until is None
