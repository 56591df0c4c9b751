"""Embedded infrastructure for development and tests: a Kafka-protocol broker,
PostgreSQL and an SMTP sink as child processes under one state folder.

Importing this package is cheap: client libraries load only when a part starts.
"""

from hub.embedded.errors import EmbeddedError
from hub.embedded.kafka import EmbeddedKafka
from hub.embedded.ports import free_port, wait_for_port
from hub.embedded.postgres import EmbeddedPostgres
from hub.embedded.process import ChildProcess
from hub.embedded.smtp import SmtpSink
from hub.embedded.stack import EmbeddedStack

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
