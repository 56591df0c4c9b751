"""Fixtures of the vault's tests: the three services' schemas and the vault in one database."""

from __future__ import annotations

from tests.integration.vault.support import pools

__all__ = ["pools"]
