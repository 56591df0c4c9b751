"""Embedded infrastructure for development and tests: a Kafka-protocol broker,
PostgreSQL and an SMTP sink as child processes under one state folder.

Importing this package is cheap: client libraries load only when a part starts.
"""

from hub.local.embedded.errors import EmbeddedError
from hub.local.embedded.kafka import EmbeddedKafka
from hub.local.embedded.ports import free_port, wait_for_port
from hub.local.embedded.postgres import EmbeddedPostgres
from hub.local.embedded.process import ChildProcess
from hub.local.embedded.smtp import SmtpSink
from hub.local.embedded.stack import EmbeddedStack

__all__ = [
    "ChildProcess",
    "EmbeddedError",
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedStack",
    "SmtpSink",
    "free_port",
    "wait_for_port",
]
