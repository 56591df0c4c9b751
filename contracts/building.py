"""Building-permit consultation contracts (a case type defined by contracts and a process definition only)."""

from __future__ import annotations
