"""An SMTP server that stores every message it receives in a Maildir.

Run as a child process by ``hub.local.embedded.smtp.SmtpSink``::

    python -m hub.local.embedded.smtp_sink_main --host 127.0.0.1 --port 2525 --maildir DIR

Stops on SIGTERM or SIGINT. Imports only the standard library and aiosmtpd,
so it can also be run by file path without importing the ``hub`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import mailbox
import signal
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

_log = logging.getLogger("smtp_sink")


class MaildirHandler:
    """Stores the message bytes as received, preceded by the envelope.

    The envelope goes into X-MailFrom / X-RcptTo headers (the names aiosmtpd's
    own handlers use), so tests can see Bcc recipients too.
    """

    def __init__(self, maildir: mailbox.Maildir) -> None:
        self._maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        trace = f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        content = envelope.original_content or b""
        key = self._maildir.add(trace.encode() + content)
        sender, recipients = envelope.mail_from, envelope.rcpt_tos
        _log.info("stored %s from %s to %s (%d bytes)", key, sender, recipients, len(content))
        return "250 OK"


async def serve(host: str, port: int, maildir: Path) -> None:
    handler = MaildirHandler(mailbox.Maildir(maildir, create=True))
    loop = asyncio.get_running_loop()
    # An explicit hostname: aiosmtpd would otherwise ask DNS for our FQDN.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="hub-smtp-sink", enable_SMTPUTF8=True), host, port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log.info("SMTP sink listening on %s:%d, storing into %s", host, port, maildir)
    await stop.wait()
    server.close()
    await server.wait_closed()
    _log.info("SMTP sink stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    asyncio.run(serve(args.host, args.port, args.maildir))


if __name__ == "__main__":
    main()
