"""The keys of the partners a process plays, and the hub keys it trusts.

A real partner holds one private key and the hub's public key, and passes both to its
``PartnerClient``. The demo, the chaos run and the tests play every partner against a hub
the supervisor started: ``hub.local.provisioning.local_keyring`` reads that hub's partner
key files and its public key into one of these, which they pass to each client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from hub.security.signing import PublicKey, SigningKey


class Keyring:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signing: dict[str, SigningKey] = {}
        self._hub_keys: dict[str, PublicKey] = {}

    def signing_key(self, partner_id: str) -> SigningKey | None:
        with self._lock:
            return self._signing.get(partner_id)

    def set_signing_key(self, partner_id: str, key: SigningKey) -> None:
        with self._lock:
            self._signing[partner_id] = key

    def trust_hub_key(self, key: PublicKey) -> None:
        """Several hubs may run in one test session, each with its own key: all are trusted."""
        with self._lock:
            self._hub_keys[key.key_id] = key

    @property
    def hub_keys(self) -> Mapping[str, PublicKey]:
        """A live read-only view: keys trusted later are seen by clients created earlier."""
        return MappingProxyType(self._hub_keys)
