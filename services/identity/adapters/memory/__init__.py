"""The identity service in memory: the same ports as PostgreSQL, for handler tests without I/O."""

from __future__ import annotations

from services.identity.adapters.memory.store import MemoryStore
from services.identity.adapters.memory.units import (
    MemoryIdentityErasure,
    MemoryRepositories,
    MemoryUnitOfWork,
    MemoryUnitsOfWork,
)

__all__ = [
    "MemoryIdentityErasure",
    "MemoryRepositories",
    "MemoryStore",
    "MemoryUnitOfWork",
    "MemoryUnitsOfWork",
]
