"""Sector pseudonyms, free of I/O.

Each sector gets its own key, derived from the hub's pseudonym secret; a person's
pseudonym in a sector is a keyed hash of their AHVN13 under that key. Two sectors
therefore hold unrelated identifiers for the same person and cannot join their data,
while the identity service can always recompute them (eCH-0215 SPID idea).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sector_key(secret: bytes, sector: str) -> bytes:
    return hmac.new(secret, f"hub-sector-key:{sector}".encode(), hashlib.sha256).digest()


def sector_pseudonym(secret: bytes, sector: str, vn: str) -> str:
    """Stable per (person, sector); 26 base32 characters (130 bits) prefixed by the sector."""
    digest = hmac.new(sector_key(secret, sector), vn.encode(), hashlib.sha256).digest()
    return f"{sector}:{base64.b32encode(digest).decode().rstrip('=').lower()[:26]}"
