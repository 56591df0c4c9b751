"""The parts of ``hub person erase`` the registry and notifications carry out, each in its
own schema (``services.erasure.PersonErasure``); identity, which finds the person, adds
its own. The erase command gets them from here and knows no other service's tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.erasure import PersonErasure
from services.notifications.adapters.postgres.erasure import NotificationsErasure
from services.registry.adapters.postgres.erasure import RegistryErasure

if TYPE_CHECKING:
    import asyncpg


def other_services(conn: asyncpg.Connection) -> tuple[PersonErasure, ...]:
    """On the erase command's connection; each names its own schema."""
    return (RegistryErasure(conn), NotificationsErasure(conn))
