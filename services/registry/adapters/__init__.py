"""The registry's adapters: PostgreSQL (the service's one place with SQL) and in memory (tests)."""
