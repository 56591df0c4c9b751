"""Rules of the dead-letter and outbox tooling that need no I/O."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from hub.cli import dead_letters as dlq
from hub.cli import main as cli
from hub.cli.dlq import format_content, format_table, parse_time
from hub.cli.outbox_status import OutboxStatus, format_status

NOW = dt.datetime(2026, 5, 4, 10, 30, tzinfo=dt.UTC)


def _dead_letter(**changes: object) -> dlq.DeadLetter:
    fields: dict[str, object] = {
        "id": 12,
        "service": "registry",
        "consumer_group": "hub.registry.ingress",
        "topic": "hub.ingress",
        "partition": 2,
        "offset": 41,
        "event_id": "e-1",
        "event_type": "ch.lu.hub.relocation.move-reported.v1",
        "error_class": "UnknownCase",
        "error_message": "no case\n  eumzug-1",
        "dead_letter_topic": "hub.ingress-dlt",
        "recorded_at": NOW,
        "redriven_at": None,
        "redrive_count": 0,
        "purged_at": None,
        **changes,
    }
    return dlq.DeadLetter(**fields)  # type: ignore[arg-type]


def test_an_empty_selection_selects_everything() -> None:
    assert dlq.where(dlq.Selection(services=("registry",))) == ("true", [])
    assert not dlq.Selection(services=("registry",)).narrowed


def test_each_filter_is_one_numbered_parameter() -> None:
    since = NOW - dt.timedelta(days=1)
    selection = dlq.Selection(
        services=("registry",),
        ids=(3, 4),
        topic="hub.ingress",
        event_type="ch.lu.hub.x.v1",
        since=since,
        until=NOW,
        reason="case",
        older_than_days=2,
    )
    condition, params = dlq.where(selection, first_param=3)
    assert condition == (
        "id = ANY($3::bigint[]) AND topic = $4 AND event_type = $5 AND recorded_at >= $6"
        " AND recorded_at < $7 AND (error_class ILIKE $8 OR error_message ILIKE $8)"
        " AND recorded_at < now() - make_interval(secs => $9)"
    )
    assert params == [[3, 4], "hub.ingress", "ch.lu.hub.x.v1", since, NOW, "%case%", 172800.0]
    assert selection.narrowed


def test_reason_wildcards_are_taken_literally() -> None:
    _, params = dlq.where(dlq.Selection(services=("registry",), reason="100%_sure\\"))
    assert params == ["%100\\%\\_sure\\\\%"]


def test_redrive_headers_drop_dead_letter_and_trace_headers_and_keep_the_rest_in_order() -> None:
    headers = [
        ("ce_id", "e-1"),
        ("traceparent", "00-abc-def-01"),
        ("dlt-original-topic", "hub.ingress"),
        ("content-type", "application/json"),
        ("tracestate", "vendor=1"),
        ("ce_source", "urn:partner"),
    ]
    kept, traceparent, tracestate = dlq.redrive_headers(headers)
    assert kept == [["ce_id", "e-1"], ["content-type", "application/json"], ["ce_source", "urn:partner"]]
    assert (traceparent, tracestate) == ("00-abc-def-01", "vendor=1")
    assert dlq.redrive_headers([("ce_id", "e-1")]) == ([["ce_id", "e-1"]], None, None)


def test_bytes_are_shown_as_text_when_utf8_else_base64() -> None:
    assert dlq.decode_bytes("Grüezi".encode()) == {"encoding": "utf-8", "text": "Grüezi"}
    assert dlq.decode_bytes(b"\xff\x00") == {"encoding": "base64", "data": "/wA="}
    assert dlq.decode_bytes(None) is None


def test_times_without_an_offset_are_local_and_offsets_are_kept() -> None:
    assert parse_time("2026-05-04T10:30:00Z") == NOW
    assert parse_time("2026-05-04T12:30:00+02:00") == NOW
    local = parse_time("2026-05-04")
    assert local.tzinfo is not None
    assert local.replace(tzinfo=None) == dt.datetime(2026, 5, 4)
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO 8601 date or time: 'yesterday'"):
        parse_time("yesterday")


def test_state_follows_redrive_and_purge() -> None:
    assert _dead_letter().state == "open"
    assert _dead_letter(redrive_count=1, redriven_at=NOW).state == "redriven"
    assert _dead_letter(redrive_count=1, purged_at=NOW).state == "purged"
    assert _dead_letter(purged_at=NOW).as_json()["purged_at"] == NOW.isoformat()


def test_the_table_has_one_line_per_dead_letter_and_flattens_messages() -> None:
    table = format_table([_dead_letter(), _dead_letter(id=13, redrive_count=2, redriven_at=NOW)]).splitlines()
    assert table[0].split()[:3] == ["ID", "SERVICE", "GROUP"]
    assert len(table) == 3
    assert "hub.ingress[2]@41" in table[1]
    assert "UnknownCase: no case eumzug-1" in table[1]
    assert table[1].rstrip().endswith("open")
    assert " redriven x2 " in table[2]


def test_show_says_why_content_is_missing() -> None:
    purged = format_content(dlq.DeadLetterContent(_dead_letter(purged_at=NOW), None, None, None))
    assert "(key, headers and payload erased)" in purged
    assert "payload" not in purged.split("erased)")[1]
    old = format_content(dlq.DeadLetterContent(_dead_letter(), None, None, None))
    assert "recorded before migration 0002" in old
    full = format_content(dlq.DeadLetterContent(_dead_letter(), b"case-1", [("ce_id", "e-1")], b"\xff"))
    assert "    ce_id: e-1" in full.splitlines()
    assert full.splitlines()[-1].split() == ["payload", "(not", "UTF-8,", "base64)", "/w=="]


def test_outbox_status_table() -> None:
    table = format_status(
        [
            OutboxStatus(
                "identity", present=True, backlog=4, oldest_unpublished_s=12.345, published_awaiting_purge=9
            ),
            OutboxStatus("notifications", present=False),
        ]
    ).splitlines()
    assert table[1].split() == ["identity", "4", "12.3s", "9", "0", "0"]
    assert "never started" in table[2]


def test_outbox_status_table_names_parked_rows_and_their_reasons() -> None:
    reason = "MessageSizeTooLargeError: 2000128 bytes over max_request_size"
    table = format_status(
        [
            OutboxStatus(
                "registry",
                present=True,
                backlog=2,
                retrying=1,
                parked=3,
                oldest_parked_s=61.0,
                park_reasons=[{"reason": reason, "count": 3}],
            )
        ]
    ).splitlines()
    assert table[1].split() == ["registry", "2", "-", "0", "1", "3"]
    assert table[2].startswith("registry: 3 parked, the oldest written 61.0s ago")
    assert table[3] == f"  3x {reason}"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["dlq", "redrive"], "hub: error: redrive needs --id, a filter or --all\n"),
        (["dlq", "purge", "--service", "registry"], "hub: error: purge needs --id, a filter or --all\n"),
        (["dlq", "purge", "--id", "3"], "hub: error: --id needs --service: ids are per service\n"),
    ],
)
def test_mass_changes_must_be_asked_for_before_any_connection(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == error
