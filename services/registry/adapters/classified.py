"""Which fields of a case's data are sealed: the same split for every adapter.

Public and internal fields stay readable (routing, ``hub case show`` and statistics need
them); confidential and secret ones are sealed under the person's data key
(``contracts.classification``), so that destroying the key erases them.
"""

from __future__ import annotations

from typing import Any

from contracts import contract_for
from contracts.classification import split
from contracts.errors import UnknownEventType


def halves(event_type: str | None, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Readable and protected fields of ``data``; all protected if the type is not known."""
    try:
        model = contract_for(event_type) if event_type is not None else None
    except UnknownEventType:
        model = None
    return split(model, data)
