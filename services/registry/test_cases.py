"""Test cases an operator opens on a running hub (``hub case open --test``), with no partner's key.

A partner that joins the hub, or changes its system, needs a case to answer. Opening one used
to take the opening partner's private key (the portal's); an operator holds no partner's key
and must not. Instead the operator publishes the case type's opening event itself on
``hub.admin``, signed with the operator key (``hub.security.operator_keys``) like every admin
command, and the registry opens the case from it, under these rules:

* Only a trusted operator's command is taken (source ``urn:ch:lu:hub:admin:cli`` and its
  signature); partners cannot send openings on ``hub.admin`` at all, and an operator cannot
  open a case on a partner's ingress topic (those admit only the partner's own events).
* Only a test case: the command must carry ``ce_testdelivery: true`` and a case id that begins
  with ``test-``, or it is refused (dead-lettered with the reason). The case is stored as a
  test delivery, so every event about it carries the flag: deliveries to partners (who must
  treat them as tests), identity's pseudonym requests, and notifications, which simulate the
  citizen's notice instead of sending it. A real case can therefore never be opened this way,
  and a test case can never pass for a real one.
* The case's opener slot is filled by the one active partner with the opening role (the
  portal): the case then has the same parties as a real one, and milestones, rejections and
  completion follow the process definition unchanged. With none or several such partners the
  command is refused, naming them, since the hub cannot tell which portal it stands for.

Everything after the opening is the ordinary flow of ``handlers.open_case``; the timeline says
that an operator opened the case as a test, and with which key.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import Contract
from hub.runtime.messages import Incoming
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import ADMIN_CLI_SOURCE, CommandPolicy
from services.registry.case_domain import check_sender
from services.registry.domain import ProcessDefinition, Processes
from services.registry.errors import NotAuthorized
from services.registry.handlers import open_case
from services.registry.model import Partner, TimelineStep
from services.registry.ports import UnitOfWork

TEST_CASE_PREFIX = "test-"  # every case an operator opens is named as a test at a glance
TEST_CASE_STEP = "test-case-opened"  # the timeline's name for the operator's opening
TestCaseHandler = Callable[[Incoming[Contract], UnitOfWork], Awaitable[None]]


def test_case_handlers(
    settings: HubSettings, processes: Processes, *, ops_email: str
) -> dict[str, TestCaseHandler]:
    """A handler for each case type's opening event on ``hub.admin``."""
    handler = functools.partial(
        open_test_case,
        operators=CommandPolicy.from_settings(settings),
        processes=processes,
        ops_email=ops_email,
    )
    return {event_type: handler for event_type in processes.by_opening}


async def open_test_case(
    msg: Incoming[Contract],
    uow: UnitOfWork,
    *,
    operators: CommandPolicy,
    processes: Processes,
    ops_email: str,
) -> None:
    check_test_opening(msg)
    operators.verify_operator_command(msg.headers, msg.value)
    process = processes.by_opening[msg.envelope.type]
    opener = await standing_opener(uow, process)
    await open_case(msg, uow, process=process, partner=opener, ops_email=ops_email)
    signer = msg.envelope.sigkeyid or "no key (signatures not required on this hub)"
    await uow.timeline.add(
        TimelineStep(
            case_id=msg.case_id,
            service="registry",
            event_type=TEST_CASE_STEP,
            event_id=msg.envelope.id,
            trace_id=msg.trace_id,
            detail=f"opened as a test case by an operator ({signer}), "
            f"{opener.partner_id} in the opener slot; every event of it is flagged testdelivery",
        )
    )


def check_test_opening(msg: Incoming[Any]) -> None:
    """Refuse, before the signature is looked at, whatever is not an operator's test opening:
    refusing on an unproven claim is safe, and nothing is applied before the signature holds."""
    envelope = msg.envelope
    if envelope.source != ADMIN_CLI_SOURCE:
        raise NotAuthorized(
            f"{envelope.source[:200]} may not open a case on hub.admin; "
            "partners open cases on their own ingress topic"
        )
    if not envelope.testdelivery:
        raise NotAuthorized("an operator opens test cases only: ce_testdelivery must be true")
    if not envelope.businessprocessid.startswith(TEST_CASE_PREFIX):
        raise NotAuthorized(f"a test case's id must begin with {TEST_CASE_PREFIX!r}")


async def standing_opener(uow: UnitOfWork, process: ProcessDefinition) -> Partner:
    """The one active partner with the role that opens ``process``: it fills the opener slot."""
    role = process.opened_by.role
    active = [c for c in await uow.partners.candidates([role]) if c.active and role in c.roles]
    if len(active) != 1:
        found = ", ".join(c.partner_id for c in active) or "none"
        raise NotAuthorized(
            f"a test {process.case_type} case needs exactly one active partner with the role {role} "
            f"for its opener slot; found {found}"
        )
    return check_sender(await uow.partners.get(active[0].partner_id), active[0].partner_id)
