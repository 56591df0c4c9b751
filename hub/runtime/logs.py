"""Logging set-up: one line per event, quiet third-party chatter, no secrets.

Text lines for people at a terminal; JSON lines (``HUB_LOG_FORMAT=json``) for a log
collector, each with the trace and span ids of the work it was written in, so a log line
leads to its trace and a trace to its log lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

from opentelemetry import trace


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, service, message, trace and span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self._service,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str, *, service: str, file: Path | None = None, json_lines: bool = False
) -> None:
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        JsonLines(service)
        if json_lines
        else logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream logs every message at INFO and aiokafka narrates rebalances: too loud.
    for noisy in ("faststream", "aiokafka", "hub.broker", "opentelemetry"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
