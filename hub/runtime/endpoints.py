"""Where the running hub's infrastructure is, so other CLI commands can find it.

``hub up`` writes ``<state_dir>/endpoints.json`` while it runs; commands such as
``hub case show`` read it when the settings do not name the infrastructure.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings

FILE_NAME = "endpoints.json"


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    database_url: str
    smtp_host: str
    smtp_port: int
    embedded_broker: bool
    supervisor_pid: int

    def apply(self, settings: HubSettings) -> HubSettings:
        return settings.model_copy(
            update={
                "kafka_bootstrap_servers": self.bootstrap_servers,
                "database_url": SecretStr(self.database_url),
                "smtp_host": self.smtp_host,
                "smtp_port": self.smtp_port,
                "kafka_enable_idempotence": settings.kafka_enable_idempotence and not self.embedded_broker,
            }
        )

    def child_environment(self) -> dict[str, str]:
        env = {
            "HUB_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "HUB_DATABASE_URL": self.database_url,
            "HUB_SMTP_HOST": self.smtp_host,
            "HUB_SMTP_PORT": str(self.smtp_port),
        }
        if self.embedded_broker:
            env["HUB_KAFKA_ENABLE_IDEMPOTENCE"] = "false"  # Tansu rejects InitProducerId
        return env


def write_endpoints(state_dir: Path, endpoints: Endpoints) -> Path:
    path = state_dir / FILE_NAME
    path.write_text(json.dumps(asdict(endpoints), indent=2))
    path.chmod(0o600)  # it holds the database URL
    return path


def read_endpoints(state_dir: Path) -> Endpoints | None:
    path = state_dir / FILE_NAME
    if not path.exists():
        return None
    endpoints = Endpoints(**json.loads(path.read_text()))
    try:
        os.kill(endpoints.supervisor_pid, 0)
    except ProcessLookupError:
        return None  # a hub that is no longer running
    return endpoints


def running_hub_settings(settings: HubSettings) -> HubSettings:
    """Settings pointing at the infrastructure, from the environment or a running ``hub up``."""
    if settings.kafka_bootstrap_servers and settings.database_url:
        return settings
    endpoints = read_endpoints(settings.state_dir)
    if endpoints is None:
        raise ConfigurationError(
            f"no running hub found in {settings.state_dir} and HUB_DATABASE_URL is not set; "
            "start one with `hub up`"
        )
    return endpoints.apply(settings)
