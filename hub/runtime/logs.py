"""Logging set-up: one line per event, quiet third-party chatter, no secrets."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def configure_logging(level: str, *, service: str, file: Path | None = None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream logs every message at INFO and aiokafka narrates rebalances: too loud.
    for noisy in ("faststream", "aiokafka", "hub.broker", "opentelemetry"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
