"""Who may send a command on ``hub.admin``: a trusted operator's signature for the CLI's
source, or an active operations partner's own registered key. Checked before the handler."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import pytest_asyncio

from contracts import Contract, Envelope, Sector
from contracts.admin import RegisterPartner, RegisterPartnerKey
from hub.runtime.messages import Incoming
from hub.security.operator_keys import CommandPolicy
from hub.security.signing import SigningKey
from hub.security.signing_errors import ReplayRefused, UnknownSigningKey, UnsignedEvent
from services.identity import handlers_admin, handlers_partner_keys
from services.identity.adapters.memory import MemoryStore
from services.identity.errors import NotAuthorized
from tests.unit.identity.support import CLI, KRIENS_OFFICE, OPS, handle, seeded_store

pytestmark = pytest.mark.asyncio
OPERATOR = SigningKey.generate("operator-1")
OPS_KEY = SigningKey.generate("ops-2026")
NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"
REGISTER = RegisterPartner.model_validate(
    {
        "partner_id": NEW_PARTNER,
        "name": "Gemeinde Horw",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": {"level": "municipality", "bfs_number": 1058, "canton": "LU"},
    }
)


def _policy(*, require_signatures: bool = True) -> CommandPolicy:
    return CommandPolicy(
        trusted=lambda: {OPERATOR.key_id: OPERATOR.public},
        require_signatures=require_signatures,
        max_age_s=300,
        max_future_skew_s=60,
    )


def _command(data: Contract, source: str, key: SigningKey | None, *, age_s: float = 0) -> Incoming[Any]:
    """The record as it arrives: signed by ``key`` (None: unsigned), sent ``age_s`` ago."""
    time = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
    unsigned = Envelope.new(data, source=source, business_process_id="admin", time=time)
    value = data.model_dump_json().encode()
    headers = unsigned.to_headers() if key is None else key.sign_headers(unsigned.to_headers(), value)
    return Incoming(
        envelope=Envelope.from_headers(headers),
        data=data,
        topic="hub.admin",
        partition=0,
        offset=0,
        trace_id="0" * 32,
        value=value,
        headers=tuple(headers),
    )


async def _register_partner(
    store: MemoryStore, msg: Incoming[Any], policy: CommandPolicy | None = None
) -> None:
    verified = handlers_admin.verified(handlers_admin.register_partner, policy or _policy())
    await handle(store, verified, msg)


@pytest_asyncio.fixture
async def store() -> MemoryStore:
    store = seeded_store()
    ops_key = RegisterPartnerKey(partner_id=OPS, key_id=OPS_KEY.key_id, public_key=OPS_KEY.public.base64)
    await handle(store, handlers_partner_keys.register_partner_key, _command(ops_key, CLI, None))
    return store


async def test_a_command_a_trusted_operator_signed_is_applied(store: MemoryStore) -> None:
    await _register_partner(store, _command(REGISTER, CLI, OPERATOR))
    assert NEW_PARTNER in store.state.partners


async def test_an_operator_command_signed_with_another_key_is_refused(store: MemoryStore) -> None:
    with pytest.raises(UnknownSigningKey, match="not a trusted operator key"):
        await _register_partner(store, _command(REGISTER, CLI, SigningKey.generate("stranger")))
    assert NEW_PARTNER not in store.state.partners


async def test_an_unsigned_command_is_refused_when_signatures_are_required(store: MemoryStore) -> None:
    with pytest.raises(UnsignedEvent):
        await _register_partner(store, _command(REGISTER, CLI, None))
    assert NEW_PARTNER not in store.state.partners
    await _register_partner(store, _command(REGISTER, CLI, None), _policy(require_signatures=False))
    assert NEW_PARTNER in store.state.partners


async def test_an_old_operator_command_is_refused_as_a_replay(store: MemoryStore) -> None:
    with pytest.raises(ReplayRefused):
        await _register_partner(store, _command(REGISTER, CLI, OPERATOR, age_s=3600))
    assert NEW_PARTNER not in store.state.partners


async def test_an_operations_partner_signs_with_its_own_registered_key(store: MemoryStore) -> None:
    await _register_partner(store, _command(REGISTER, f"urn:ch:lu:hub:partner:{OPS}", OPS_KEY))
    assert NEW_PARTNER in store.state.partners


async def test_an_operations_partner_with_a_key_it_never_registered_is_refused(store: MemoryStore) -> None:
    with pytest.raises(UnknownSigningKey):
        await _register_partner(store, _command(REGISTER, f"urn:ch:lu:hub:partner:{OPS}", OPERATOR))
    assert NEW_PARTNER not in store.state.partners


async def test_a_partner_without_the_right_is_refused_before_its_signature_is_looked_at(
    store: MemoryStore,
) -> None:
    with pytest.raises(NotAuthorized):
        await _register_partner(store, _command(REGISTER, f"urn:ch:lu:hub:partner:{KRIENS_OFFICE}", None))
    assert NEW_PARTNER not in store.state.partners
