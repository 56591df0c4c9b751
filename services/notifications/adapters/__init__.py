"""The notifications service's adapters: PostgreSQL (``postgres``) and in memory (``memory``),
both implementing ``services.notifications.ports``."""
