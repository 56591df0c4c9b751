"""Settings of the registry only, read from the environment (prefix ``HUB_``).

They live here rather than in ``hub/runtime/settings.py`` because no other service needs
them; the variables share the hub's prefix, so operators configure everything the same way.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.runtime.settings import ENV_PREFIX


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    ops_email: str = Field("hub-ops@stadtluzern.ch", description="Where escalations are mailed.")
    case_deadline_s: float | None = Field(
        None, gt=0, description="Overrides every case type's deadline; for test environments and demos."
    )
    escalation_check_interval_s: float = Field(5.0, gt=0)
    audit_anchor_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often the registry publishes the audit chain's head on hub.audit.heads "
        "(when it moved): a cut chain is detected back to the last anchor.",
    )
    shared_ingress: bool = Field(
        False,
        description="The registry also reads the shared hub.ingress, where any partner may write; "
        "off: each partner publishes only on its own hub.ingress.<partner> (Kafka ACLs).",
    )
    registry_cache_ttl_s: float = Field(
        30.0,
        ge=0,
        description="How long the registry holds partners, their keys, subscriptions and the "
        "catalogue in memory at most (0: not at all). A change is seen at once by the replica "
        "that applies it and, through PostgreSQL's NOTIFY, by the others within milliseconds; "
        "this bounds how long a replica that missed the notice (its listener reconnecting) "
        "can go on using what changed, a suspended partner or a revoked key included.",
    )
