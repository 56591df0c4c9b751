"""Partners' signing keys: rotation, windows, revocation, each announced; in memory."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from hub.security.signing import SigningKey
from services.identity import handlers_partner_keys
from services.identity.adapters.memory import MemoryStore
from services.identity.errors import KeyConflict, NotAuthorized, UnknownKey, UnknownPartner
from tests.unit.identity.support import CLI, KRIENS_OFFICE, LUCERNE_OFFICE, handle, incoming, seeded_store

pytestmark = pytest.mark.asyncio
PUBLIC = SigningKey.generate("x").public.base64
OTHER_PUBLIC = SigningKey.generate("y").public.base64


def _add(**changes: Any) -> RegisterPartnerKey:
    fields: dict[str, Any] = {"partner_id": LUCERNE_OFFICE, "key_id": "lu-2026a", "public_key": PUBLIC}
    return RegisterPartnerKey.model_validate(fields | changes)


@pytest.fixture
def store() -> MemoryStore:
    return seeded_store()


async def _register(store: MemoryStore, command: RegisterPartnerKey, source: str = CLI) -> RecordingEmitter:
    return await handle(store, handlers_partner_keys.register_partner_key, incoming(command, source=source))


async def _revoke(
    store: MemoryStore, key_id: str = "lu-2026a", partner_id: str = LUCERNE_OFFICE
) -> RecordingEmitter:
    command = RevokePartnerKey(partner_id=partner_id, key_id=key_id, reason="leaked")
    return await handle(store, handlers_partner_keys.revoke_partner_key, incoming(command, source=CLI))


async def test_a_registered_key_is_stored_and_announced_keyed_by_partner(store: MemoryStore) -> None:
    before = dt.datetime.now(dt.UTC)
    message = incoming(_add(), source=CLI)
    emitter = await handle(store, handlers_partner_keys.register_partner_key, message)
    [event] = emitter.emitted
    assert (event.topic, event.key, event.envelope.businessprocessid) == (
        topics.IDENTITY_PARTNERS,
        LUCERNE_OFFICE,
        f"partner:{LUCERNE_OFFICE}",
    )
    assert event.envelope.referenceid == message.envelope.id
    announced = event.data
    assert isinstance(announced, PartnerKeyRegistered)
    assert (announced.key_id, announced.public_key, announced.valid_until) == ("lu-2026a", PUBLIC, None)
    assert announced.valid_from >= before  # no window given: valid from registration on
    stored = store.state.partner_keys["lu-2026a"].key
    assert (stored.partner_id, stored.valid_from, stored.revoked_at) == (
        LUCERNE_OFFICE,
        announced.valid_from,
        None,
    )


async def test_rotation_keeps_several_keys_valid_and_a_window_can_be_changed(store: MemoryStore) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await _register(store, _add(valid_from=start))
    await _register(store, _add(key_id="lu-2026b", public_key=OTHER_PUBLIC))
    end = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    emitter = await _register(store, _add(valid_until=end))  # the first key now ends; its start stays
    stored = store.state.partner_keys["lu-2026a"].key
    assert (stored.valid_from, stored.valid_until) == (start, end)
    [event] = emitter.of_type(PartnerKeyRegistered)
    assert (event.key_id, event.valid_from, event.valid_until) == ("lu-2026a", start, end)
    assert set(store.state.partner_keys) == {"lu-2026a", "lu-2026b"}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (_add(public_key=OTHER_PUBLIC), "key id lu-2026a is taken by another key"),
        (_add(partner_id=KRIENS_OFFICE), "key id lu-2026a is taken by another key"),
        (_add(key_id="lu-2026z"), "this public key is already registered as lu-2026a"),
    ],
    ids=["same-id-other-key", "same-id-other-partner", "same-key-other-id"],
)
async def test_a_key_id_and_a_key_stand_for_one_thing_only(
    store: MemoryStore, command: RegisterPartnerKey, reason: str
) -> None:
    await _register(store, _add())
    with pytest.raises(KeyConflict, match=reason):
        await _register(store, command)
    assert set(store.state.partner_keys) == {"lu-2026a"}
    assert store.state.partner_keys["lu-2026a"].key.public_key == PUBLIC


async def test_revocation_is_announced_final_and_idempotent(store: MemoryStore) -> None:
    await _register(store, _add())
    first = (await _revoke(store)).of_type(PartnerKeyRevoked)
    second = (await _revoke(store)).of_type(PartnerKeyRevoked)
    assert len(first) == len(second) == 1
    assert first[0].revoked_at == second[0].revoked_at  # the first revocation's time stands
    assert (first[0].reason, first[0].partner_id, first[0].key_id) == ("leaked", LUCERNE_OFFICE, "lu-2026a")
    with pytest.raises(KeyConflict, match="was revoked"):
        await _register(store, _add())


async def test_revoking_an_unknown_key_or_another_partners_key_is_refused(store: MemoryStore) -> None:
    with pytest.raises(UnknownKey, match="no key lu-2026a"):
        await _revoke(store)
    await _register(store, _add())
    with pytest.raises(KeyConflict, match=f"does not belong to {KRIENS_OFFICE}"):
        await _revoke(store, partner_id=KRIENS_OFFICE)
    assert store.state.partner_keys["lu-2026a"].key.revoked_at is None


async def test_a_key_for_an_unknown_partner_or_from_a_non_operator_is_refused(store: MemoryStore) -> None:
    with pytest.raises(UnknownPartner, match="no partner CH/MUN/1062/nobody"):
        await _register(store, _add(partner_id="CH/MUN/1062/nobody"))
    with pytest.raises(NotAuthorized):  # a partner may not register keys, not even its own
        await _register(store, _add(), source=f"urn:ch:lu:hub:partner:{LUCERNE_OFFICE}")
    with pytest.raises(NotAuthorized):
        await handle(
            store,
            handlers_partner_keys.revoke_partner_key,
            incoming(
                RevokePartnerKey(partner_id=LUCERNE_OFFICE, key_id="lu-2026a"),
                source=f"urn:ch:lu:hub:partner:{LUCERNE_OFFICE}",
            ),
        )
    assert store.state.partner_keys == {}


async def test_an_empty_window_is_refused() -> None:
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="valid_until must be later than valid_from"):
        _add(valid_from=moment, valid_until=moment)


async def test_a_window_ending_before_the_stored_start_is_refused(store: MemoryStore) -> None:
    await _register(store, _add(valid_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))
    with pytest.raises(KeyConflict, match="valid_until must be later than 2026-06-01"):
        await _register(store, _add(valid_until=dt.datetime(2026, 5, 1, tzinfo=dt.UTC)))
    assert store.state.partner_keys["lu-2026a"].key.valid_until is None
