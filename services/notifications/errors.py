"""The notifications service's exception tree: how a failed delivery should be treated.

Adapters translate their library's errors into these at the boundary, so the
dispatcher decides retry or give-up without knowing SMTP, HTTP or SQL.
"""

from __future__ import annotations

__all__ = ["DeliveryError", "PermanentDeliveryError", "TemporaryDeliveryError"]


class DeliveryError(Exception):
    """Root of delivery failures; the subclass decides whether to retry."""


class TemporaryDeliveryError(DeliveryError):
    """The other side may accept it later (SMTP 4xx, HTTP 429/5xx, connection refused, timeout)."""


class PermanentDeliveryError(DeliveryError):
    """Refused for good (unknown mailbox, HTTP 4xx, no endpoint); retrying cannot help."""
