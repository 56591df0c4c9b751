"""Signing webhook deliveries so a partner can tell they come from the hub, unchanged and fresh.

Each POST carries two headers:

* ``X-Hub-Timestamp``: the Unix time of the attempt, in whole seconds, as decimal digits;
* ``X-Hub-Signature-256``: ``sha256=`` + lowercase hex of HMAC-SHA256(secret, signed content).

The signed content is the timestamp, a full stop, and the raw request body, as bytes:
``b"1767225600." + body``. The receiver recomputes it over the body exactly as received
(before parsing JSON), compares in constant time, and refuses a timestamp older than a
few minutes, so a captured request cannot be replayed later. Each retry is signed anew.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMP_HEADER = "X-Hub-Timestamp"
DEFAULT_TOLERANCE_S = 300


def signed_content(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"." + body


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, signed_content(timestamp, body), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: bytes, body: bytes, *, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: bytes,
    body: bytes,
    *,
    timestamp: str | None,
    signature_header: str | None,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a partner runs on receipt (a reference for their implementation, and for tests)."""
    if not timestamp or not signature_header or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
