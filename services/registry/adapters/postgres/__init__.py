"""The registry over PostgreSQL: the one place with the service's SQL.

``PostgresRegistry`` builds the unit of work (``services.registry.ports``) on a
connection in a transaction; ``RegistryErasure`` is the registry's part of an erasure;
``operations`` holds what the commands, metrics and start-up read.
"""

from services.registry.adapters.postgres.erasure import RegistryErasure
from services.registry.adapters.postgres.unit_of_work import PostgresRegistry, PostgresUnitOfWork

__all__ = ["PostgresRegistry", "PostgresUnitOfWork", "RegistryErasure"]
