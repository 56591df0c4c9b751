"""Partners' signing keys in identity: rotation, windows, revocation, each announced."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime import topics
from hub.security.signing import SigningKey
from services.identity import partner_keys
from services.identity.errors import NotAuthorized, UnknownPartner
from services.identity.partner_keys import KeyConflict, UnknownKey
from tests.integration.identity.support import CLI, KRIENS_OFFICE, LUCERNE_OFFICE, handle, incoming, outbox

pytestmark = pytest.mark.asyncio
PUBLIC = SigningKey.generate("x").public.base64
OTHER_PUBLIC = SigningKey.generate("y").public.base64


def _add(**changes: Any) -> RegisterPartnerKey:
    fields: dict[str, Any] = {"partner_id": LUCERNE_OFFICE, "key_id": "lu-2026a", "public_key": PUBLIC}
    return RegisterPartnerKey.model_validate(fields | changes)


async def _register(pool: asyncpg.Pool, command: RegisterPartnerKey, source: str = CLI) -> None:
    await handle(pool, partner_keys.register_partner_key, incoming(command, source=source))


async def _revoke(pool: asyncpg.Pool, key_id: str = "lu-2026a", partner_id: str = LUCERNE_OFFICE) -> None:
    command = RevokePartnerKey(partner_id=partner_id, key_id=key_id, reason="leaked")
    await handle(pool, partner_keys.revoke_partner_key, incoming(command, source=CLI))


async def _stored(pool: asyncpg.Pool, key_id: str) -> asyncpg.Record | None:
    async with pool.acquire() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM partner_keys WHERE key_id = $1", key_id
        )
    return row


async def test_a_registered_key_is_stored_and_announced_keyed_by_partner(pool: asyncpg.Pool) -> None:
    before = dt.datetime.now(dt.UTC)
    await _register(pool, _add())
    [event] = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert (event.type, event.key, event.business_process_id) == (
        PartnerKeyRegistered.event_type,
        LUCERNE_OFFICE,
        f"partner:{LUCERNE_OFFICE}",
    )
    announced = PartnerKeyRegistered.model_validate(event.data())
    assert (announced.key_id, announced.public_key, announced.valid_until) == ("lu-2026a", PUBLIC, None)
    assert announced.valid_from >= before  # no window given: valid from registration on
    row = await _stored(pool, "lu-2026a")
    assert row is not None
    assert row["revoked_at"] is None


async def test_rotation_keeps_several_keys_valid_and_a_window_can_be_changed(pool: asyncpg.Pool) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await _register(pool, _add(valid_from=start))
    await _register(pool, _add(key_id="lu-2026b", public_key=OTHER_PUBLIC))
    end = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    await _register(pool, _add(valid_until=end))  # the first key now ends; its start stays
    row = await _stored(pool, "lu-2026a")
    assert row is not None
    assert (row["valid_from"], row["valid_until"]) == (start, end)
    events = [
        e for e in await outbox(pool, topics.IDENTITY_PARTNERS) if e.type == PartnerKeyRegistered.event_type
    ]
    assert [e.data()["key_id"] for e in events] == ["lu-2026a", "lu-2026b", "lu-2026a"]


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
    pool: asyncpg.Pool, command: RegisterPartnerKey, reason: str
) -> None:
    await _register(pool, _add())
    with pytest.raises(KeyConflict, match=reason):
        await _register(pool, command)
    assert len(await outbox(pool, topics.IDENTITY_PARTNERS)) == 1


async def test_revocation_is_announced_final_and_idempotent(pool: asyncpg.Pool) -> None:
    await _register(pool, _add())
    await _revoke(pool)
    await _revoke(pool)
    revoked = [
        e for e in await outbox(pool, topics.IDENTITY_PARTNERS) if e.type == PartnerKeyRevoked.event_type
    ]
    assert len(revoked) == 2
    first, second = (PartnerKeyRevoked.model_validate(e.data()) for e in revoked)
    assert first.revoked_at == second.revoked_at  # the first revocation's time stands
    assert first.reason == "leaked"
    with pytest.raises(KeyConflict, match="was revoked"):
        await _register(pool, _add())


async def test_revoking_an_unknown_key_or_another_partners_key_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownKey, match="no key lu-2026a"):
        await _revoke(pool)
    await _register(pool, _add())
    with pytest.raises(KeyConflict, match=f"does not belong to {KRIENS_OFFICE}"):
        await _revoke(pool, partner_id=KRIENS_OFFICE)


async def test_a_key_for_an_unknown_partner_or_from_a_non_operator_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownPartner, match="no partner CH/MUN/1062/nobody"):
        await _register(pool, _add(partner_id="CH/MUN/1062/nobody"))
    with pytest.raises(NotAuthorized):  # a partner may not register keys, not even its own
        await _register(pool, _add(), source=f"urn:ch:lu:hub:partner:{LUCERNE_OFFICE}")
    assert await outbox(pool) == []


async def test_an_empty_window_is_refused() -> None:
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="valid_until must be later than valid_from"):
        _add(valid_from=moment, valid_until=moment)


async def test_a_window_ending_before_the_stored_start_is_refused(pool: asyncpg.Pool) -> None:
    await _register(pool, _add(valid_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))
    with pytest.raises(KeyConflict, match="valid_until must be later than 2026-06-01"):
        await _register(pool, _add(valid_until=dt.datetime(2026, 5, 1, tzinfo=dt.UTC)))
