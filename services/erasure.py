"""Erasing a person is a command every service carries out in its own schema.

``hub person erase`` destroys the person's data keys in the vault and then asks each
service, in the same transaction, to erase what it holds of the person's cases and
citizen ids. A service touches its own tables only; this port is all the command knows
of it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoreReport:
    """What happened to the person's data in one store."""

    store: str  # schema.table, or "kafka"
    done: str  # what happened to the person's data there
    rows: int | None = None  # rows concerned, where the hub can count them


class PersonErasure(Protocol):
    """A service's part of an erasure, in the transaction the command runs in."""

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        """The citizen ids this service keeps for these cases (to reach what is keyed by them)."""
        ...

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        """Erase or report what this service holds of these cases and citizen ids."""
        ...
