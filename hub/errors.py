"""The runtime's exception tree: every failure a service can meet, by how to react to it.

Transient errors are retried with backoff (the message is not committed); permanent
errors send the message to its dead-letter topic and move on.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class TransientError(HubError):
    """Retrying later may succeed (database or broker unavailable, timeouts)."""


class DatabaseUnavailable(TransientError):
    """PostgreSQL cannot be reached or dropped the connection."""


class DatabaseConflict(TransientError):
    """A serialization failure or a deadlock: the transaction lost to a concurrent one."""


class DatabaseError(HubError):
    """PostgreSQL refused a statement; ``sqlstate`` says why (``hub.runtime.db`` translates)."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class UniqueViolation(DatabaseError):
    """A row that must be unique exists already (often: a concurrent writer got there first)."""


class SchemaMissing(DatabaseError):
    """A table or column the code expects is not there: the database is not migrated yet."""


class BrokerUnavailable(TransientError):
    """Kafka cannot be reached or did not acknowledge in time."""


class PermanentError(HubError):
    """Retrying cannot help: the message itself is wrong. Dead-lettered."""


class UnroutableEvent(PermanentError):
    """The event is valid but this consumer has no handler for its type."""


class MessageTooLarge(PermanentError):
    """A record over the hub's size limit (``HUB_MAX_MESSAGE_BYTES``): refused unread."""


class UnknownCase(PermanentError):
    """The event refers to a case (business process id) the hub does not know."""


class ConfigurationError(HubError):
    """The hub cannot start with the given settings."""
