"""The registry's guard on openings sent on hub.admin: an operator's test case, nothing else."""

from __future__ import annotations

import pytest

from contracts import Envelope
from hub.local.demo import demo_person, move_report
from hub.runtime.messages import Incoming
from hub.security.operator_keys import ADMIN_CLI_SOURCE
from services.registry.errors import NotAuthorized
from services.registry.test_cases import check_test_opening


def _opening(
    *, source: str = ADMIN_CLI_SOURCE, test: bool = True, case_id: str = "test-relocation-1"
) -> Incoming:
    move = move_report(demo_person())
    envelope = Envelope.new(move, source=source, business_process_id=case_id, test_delivery=test)
    return Incoming(envelope=envelope, data=move, topic="hub.admin", partition=0, offset=0, trace_id="")


def test_an_operators_test_opening_passes_the_guard() -> None:
    check_test_opening(_opening())


@pytest.mark.parametrize(
    ("opening", "reason"),
    [
        (_opening(test=False), "ce_testdelivery must be true"),
        (_opening(case_id="eumzug-1"), "must begin with 'test-'"),
        (_opening(source="urn:ch:lu:hub:partner:CH/CAN/LU/eportal"), "may not open a case on hub.admin"),
    ],
)
def test_anything_but_an_operators_test_opening_is_refused(opening: Incoming, reason: str) -> None:
    with pytest.raises(NotAuthorized, match=reason):
        check_test_opening(opening)
