"""The hub's three services; each package has the same skeleton:

``domain`` (rules, no I/O) · ``handlers`` (plain async functions) · ``repository`` (SQL) ·
``migrations/`` (versioned SQL) · ``bootstrap`` (composition root: ``definition()``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.runtime.service import ServiceDefinition

SERVICE_NAMES = ("identity", "registry", "notifications")

__all__ = ["SERVICE_NAMES", "load_definition"]


def load_definition(name: str) -> ServiceDefinition:
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
    module = importlib.import_module(f"services.{name}.bootstrap")
    definition: ServiceDefinition = module.definition()
    return definition
