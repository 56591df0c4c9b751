"""The identity service's errors: one root, and how the consumer must react to each."""

from __future__ import annotations

from hub.errors import HubError, PermanentError


class IdentityError(HubError):
    """Root of every error the identity service raises on purpose."""


class NotAuthorized(IdentityError, PermanentError):
    """An admin command from a sender that may not administer partners: dead-lettered."""


class UnknownPartner(IdentityError, PermanentError):
    """A command names a partner that was never registered: dead-lettered, retrying cannot help."""


class KeyConflict(IdentityError, PermanentError):
    """A key id or public key already stands for something else, or the key was revoked."""


class UnknownKey(IdentityError, PermanentError):
    """A revocation names a key that was never registered."""
