"""The notifications service on PostgreSQL: the one place with its SQL.

Its tables live in the ``notifications`` schema; personal data in them is sealed under the
data key of the case's person (``hub.vault``), with the master key the composition root
passes in.
"""

from __future__ import annotations

from services.notifications.adapters.postgres.citizens import forget_preferences
from services.notifications.adapters.postgres.commands import command_repositories
from services.notifications.adapters.postgres.erasure import NotificationsErasure
from services.notifications.adapters.postgres.units import (
    PostgresRepositories,
    PostgresUnitOfWork,
    PostgresUnitsOfWork,
    unit_of_work_factory,
)

__all__ = [
    "NotificationsErasure",
    "PostgresRepositories",
    "PostgresUnitOfWork",
    "PostgresUnitsOfWork",
    "command_repositories",
    "forget_preferences",
    "unit_of_work_factory",
]
