"""The identity service on PostgreSQL: the one place with its SQL.

Its tables live in the ``identity`` schema; a person's data in them is sealed under their
data key (``hub.vault``) with the master key the composition root passes in, and found
through blind indexes under the same key.
"""

from __future__ import annotations

from services.identity.adapters.postgres.batch import batch_unit_of_work_factory
from services.identity.adapters.postgres.commands import run_command
from services.identity.adapters.postgres.erasure import IdentityErasure, erasure_connection
from services.identity.adapters.postgres.units import (
    SCHEMA,
    PostgresRepositories,
    PostgresUnitOfWork,
    PostgresUnitsOfWork,
    unit_of_work_factory,
)

__all__ = [
    "SCHEMA",
    "IdentityErasure",
    "PostgresRepositories",
    "PostgresUnitOfWork",
    "PostgresUnitsOfWork",
    "batch_unit_of_work_factory",
    "erasure_connection",
    "run_command",
    "unit_of_work_factory",
]
