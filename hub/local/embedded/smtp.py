"""A real SMTP server (aiosmtpd) as a child process that keeps every message in a Maildir."""

from __future__ import annotations

import logging
import mailbox
import os
import sys
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

from hub.local.embedded.ports import free_port, wait_for_port
from hub.local.embedded.process import ChildProcess, child_env

_log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
_SINK_SCRIPT = Path(__file__).with_name("smtp_sink_main.py")


class SmtpSink:
    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        self.maildir = self.state_dir / "maildir"
        self._process: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self) -> None:
        if self.running:
            return
        started = time.monotonic()
        # Run by file path, not "-m hub.local.embedded...": the sink needs nothing from
        # the hub package, and importing hub/__init__ could be slow or have effects.
        # -P keeps this folder off sys.path, where errors.py etc. would shadow modules.
        argv = [sys.executable, "-P", "-u", str(_SINK_SCRIPT)]
        argv += ["--host", self.host, "--port", str(self.port), "--maildir", str(self.maildir)]
        pythonpath = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        process = ChildProcess(
            "SMTP sink",
            argv,
            log_path=self.state_dir / "smtp.log",
            cwd=self.state_dir,
            env=child_env(pythonpath),
        )
        self._process = process
        process.start()
        try:
            wait_for_port(self.host, self.port, START_TIMEOUT_S, child=process)
        except BaseException:
            process.kill()
            raise
        _log.info(
            "SMTP sink ready on %s:%d in %.2f s (pid %s, maildir %s)",
            self.host,
            self.port,
            time.monotonic() - started,
            process.pid,
            self.maildir,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=5.0)

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first.

        Each carries the SMTP envelope in ``X-MailFrom`` and ``X-RcptTo`` headers.
        """
        if not (self.maildir / "new").is_dir():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        stored: list[tuple[float, str, bytes]] = []
        for key in box.iterkeys():
            try:
                stored.append((box.get_message(key).get_date(), key, box.get_bytes(key)))
            except KeyError:
                continue  # removed meanwhile
        parser = BytesParser(policy=default_policy)
        return [parser.parsebytes(raw) for _date, _key, raw in sorted(stored)]
