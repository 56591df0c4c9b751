"""Case-level events every case type shares: deliveries to partners, escalation."""

from __future__ import annotations
