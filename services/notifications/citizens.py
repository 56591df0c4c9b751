"""Where ``hub person erase`` found the deletion of a person's channel preferences.

The erasure now reaches notifications through ``NotificationsErasure``
(``services.notifications.adapters.postgres``); this name stays until the command uses it.
"""

from __future__ import annotations

from services.notifications.adapters.postgres import forget_preferences

__all__ = ["forget_preferences"]
