"""``hub case open --test CASE_TYPE --data FILE``: a test case on the running hub, for partners to answer.

The operator publishes the case type's opening event on ``hub.admin``, signed with the operator
key and flagged as a test delivery; the registry opens the case from it only as a test case
(``services/registry/test_cases.py`` says why, and what it checks). No partner's private key is
needed. The partners that are parties to it receive it, flagged ``ce_testdelivery``, and answer
it as a real one; the citizen's notices are simulated, never sent.

``--example`` prints opening data to start from (the demo's); ``--wait`` waits until the
registry opened the case or refused it, like the other admin commands (``hub.cli.admin_wait``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

from pydantic import ValidationError

from contracts import Contract
from contracts.catalog import contract_for
from contracts.errors import describe_errors
from hub.cli.admin_wait import add_wait_options, finish_from
from hub.cli.database import running_hub
from hub.errors import HubError

TEST_CASE_PREFIX = "test-"  # the registry refuses an operator's opening under any other case id


def case_types() -> dict[str, str]:
    """Each case type the registry knows, with the event type that opens it."""
    from services.registry.domain import load_processes

    return {name: process.opened_by.event_type for name, process in load_processes().by_case_type.items()}


def register(case: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    opening = case.add_parser(
        "open",
        help="open a test case on the running hub, signed with the operator key and flagged as a test "
        "delivery; its parties receive and answer it as a real case",
    )
    opening.add_argument(
        "--test",
        action="store_true",
        required=True,
        help="required: the operator opens test cases only (real cases come from their portal)",
    )
    opening.add_argument("case_type", choices=sorted(case_types()), help="the kind of case to open")
    source = opening.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        type=Path,
        help="JSON file with the opening event's data (- reads stdin); --example prints one to edit",
    )
    source.add_argument(
        "--example", action="store_true", help="print example opening data of the case type and exit"
    )
    opening.add_argument(
        "--case-id", help=f"the case id, beginning with {TEST_CASE_PREFIX!r} (default: a new one)"
    )
    add_wait_options(opening)
    opening.set_defaults(func=_open)


def _open(args: argparse.Namespace) -> int:
    event_type = case_types()[args.case_type]
    if args.example:
        print(example_opening(args.case_type).model_dump_json(indent=2))
        return 0
    opening = read_opening(event_type, args.data)
    case_id = args.case_id or f"{TEST_CASE_PREFIX}{args.case_type}-{uuid.uuid4()}"
    if not case_id.startswith(TEST_CASE_PREFIX):
        raise ValueError(f"a test case's id must begin with {TEST_CASE_PREFIX!r}: {case_id!r}")
    from services.identity.admin_publisher import publish_test_opening

    settings = running_hub()
    envelope = asyncio.run(publish_test_opening(settings, opening, case_id=case_id))
    return finish_from(settings, envelope, args)


def read_opening(event_type: str, path: Path) -> Contract:
    """The opening data, checked against its contract here so that a mistake is one line now,
    not a dead letter later; the error never quotes the data (it may name a person)."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise HubError(f"{path}: not JSON ({error.msg}, line {error.lineno})") from None
    try:
        return contract_for(event_type).model_validate_json(text)
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False, include_context=False)
        raise HubError(f"{path}: not valid data for {event_type}: {describe_errors(details)}") from None


def example_opening(case_type: str) -> Contract:
    """The demo's opening of ``case_type``: a made-up person with a valid AHVN13."""
    from hub.local.demo import consultation_request, demo_person, move_report

    if case_type == "building-permit":
        return consultation_request(demo_person())
    return move_report(demo_person())
