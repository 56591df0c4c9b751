"""The whole embedded infrastructure: broker, database and mail sink under one state folder."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

from hub.local.embedded.errors import EmbeddedError
from hub.local.embedded.kafka import EmbeddedKafka
from hub.local.embedded.postgres import EmbeddedPostgres
from hub.local.embedded.smtp import SmtpSink

_log = logging.getLogger(__name__)


class _Part(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class EmbeddedStack:
    """Starts PostgreSQL, the Kafka broker and the SMTP sink; stops them in reverse order.

    Layout: ``state_dir/postgres/``, ``state_dir/kafka/``, ``state_dir/smtp/``,
    each with its logs. A part switched off (e.g. ``kafka=False`` when an
    external broker is configured) is ``None``.
    """

    def __init__(
        self, state_dir: Path, *, kafka: bool = True, postgres: bool = True, smtp: bool = True
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.postgres = EmbeddedPostgres(self.state_dir / "postgres") if postgres else None
        self.kafka = EmbeddedKafka(self.state_dir / "kafka") if kafka else None
        self.smtp = SmtpSink(self.state_dir / "smtp") if smtp else None

    def _parts(self) -> list[_Part]:
        return [part for part in (self.postgres, self.kafka, self.smtp) if part is not None]

    def start(self) -> None:
        """Start every part; if one fails, stop those already running and re-raise."""
        started = time.monotonic()
        try:
            for part in self._parts():
                part.start()
        except BaseException:
            # Stop failures are logged by stop(); the start failure is the error to report.
            with contextlib.suppress(EmbeddedError):
                self.stop()
            raise
        _log.info("embedded infrastructure ready in %.2f s (%s)", time.monotonic() - started, self.state_dir)

    def stop(self) -> None:
        """Stop every part, newest first. Parts that already died are fine.

        Every part is tried; an ``EmbeddedError`` afterwards names those that
        could not be stopped.
        """
        failures: list[str] = []
        for part in reversed(self._parts()):
            try:
                part.stop()
            except Exception as error:
                _log.exception("could not stop %s", type(part).__name__)
                failures.append(f"{type(part).__name__}: {error}")
        if failures:
            raise EmbeddedError("could not stop " + "; ".join(failures))

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
