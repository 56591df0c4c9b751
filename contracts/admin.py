"""Administrative commands (partners, subscriptions), published by the hub CLI or an operator's system."""

from __future__ import annotations
