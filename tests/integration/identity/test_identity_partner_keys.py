"""Partners' signing keys on PostgreSQL: stored and announced through the outbox in one
transaction. The rules (rotation, windows, revocation) are tested on the in-memory stores."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime import topics
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.identity import handlers_partner_keys
from services.identity.errors import KeyConflict
from tests.integration.identity.support import CLI, LUCERNE_OFFICE, handle, incoming, outbox

pytestmark = pytest.mark.asyncio
PUBLIC = SigningKey.generate("x").public.base64


async def test_a_key_is_stored_announced_revoked_and_announced_again(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    before = dt.datetime.now(dt.UTC)
    add = RegisterPartnerKey(partner_id=LUCERNE_OFFICE, key_id="lu-2026a", public_key=PUBLIC)
    await handle(
        pool, vault_master_key, handlers_partner_keys.register_partner_key, incoming(add, source=CLI)
    )
    revoke = RevokePartnerKey(partner_id=LUCERNE_OFFICE, key_id="lu-2026a", reason="leaked")
    await handle(
        pool, vault_master_key, handlers_partner_keys.revoke_partner_key, incoming(revoke, source=CLI)
    )
    registered, revoked = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert [(e.type, e.key, e.business_process_id) for e in (registered, revoked)] == [
        (PartnerKeyRegistered.event_type, LUCERNE_OFFICE, f"partner:{LUCERNE_OFFICE}"),
        (PartnerKeyRevoked.event_type, LUCERNE_OFFICE, f"partner:{LUCERNE_OFFICE}"),
    ]
    assert PartnerKeyRegistered.model_validate(registered.data()).valid_from >= before
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM partner_keys WHERE key_id = 'lu-2026a'")
    assert (row["public_key"], row["revocation_reason"]) == (PUBLIC, "leaked")
    assert row["revoked_at"] == PartnerKeyRevoked.model_validate(revoked.data()).revoked_at


async def test_a_refused_registration_leaves_nothing_in_the_outbox(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    add = RegisterPartnerKey(partner_id=LUCERNE_OFFICE, key_id="lu-2026a", public_key=PUBLIC)
    await handle(
        pool, vault_master_key, handlers_partner_keys.register_partner_key, incoming(add, source=CLI)
    )
    other_id = RegisterPartnerKey(partner_id=LUCERNE_OFFICE, key_id="lu-2026z", public_key=PUBLIC)
    with pytest.raises(KeyConflict):
        await handle(
            pool, vault_master_key, handlers_partner_keys.register_partner_key, incoming(other_id, source=CLI)
        )
    assert len(await outbox(pool, topics.IDENTITY_PARTNERS)) == 1
