"""A missed deadline escalates the case and tells operations (deadline shortened to seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hub.local.demo import run_demo
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from services.registry.settings import RegistrySettings
from tests.e2e.conftest import running_hub
from tests.e2e.test_case_variants import _values
from tests.fixtures.infrastructure import Infrastructure


@pytest.fixture(scope="module")
def fast_deadline_hub(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubSettings]:
    env = {"HUB_CASE_DEADLINE_S": "4", "HUB_ESCALATION_CHECK_INTERVAL_S": "0.5"}
    with running_hub(infrastructure, tmp_path_factory, env) as settings:
        yield settings


def test_a_missed_deadline_escalates_and_tells_operations(
    fast_deadline_hub: HubSettings, infrastructure: Infrastructure
) -> None:
    view = asyncio.run(
        run_demo(fast_deadline_hub, variant="escalation", progress=lambda _l: None, timeout_s=90)
    )
    assert view.status == "escalated"
    step = next(s for s in view.timeline if s.event_type == "ch.lu.hub.case.escalated.v1")
    assert "arrival-registered" in (step.detail or "")
    assert step.trace_id == view.trace_id  # the escalation continues the case's trace
    ops_mail = [
        m
        for m in infrastructure.smtp.messages()
        if m["X-Hub-Case-Id"] == view.case_id and m["To"] == RegistrySettings().ops_email
    ]
    assert len(ops_mail) == 1
    ops = asyncio.run(_values(fast_deadline_hub, delivery_topic("CH/CAN/LU/ops"), view.case_id))
    assert ops
    assert ops[0]["data"]["missing_milestones"] == ["arrival-registered"]
