"""Settings of the notifications service only, read from the environment (prefix ``HUB_``).

They live here rather than in ``hub/settings.py`` because no other service needs them;
the variables share the hub's prefix so operators configure everything the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.runtime.settings import ENV_PREFIX
from services.notifications.email_sender import SmtpAccount

# Values people paste from examples; a provider would reject them anyway, but later and obscurely.
_PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "token", "xxx", "todo"})


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    sms_provider_url: HttpUrl | None = Field(
        None, description="SMS provider endpoint (POST JSON); unset: SMS preferences fall back to email."
    )
    sms_provider_token: SecretStr | None = Field(None, description="Bearer token for the SMS provider.")
    sms_provider_timeout_s: float = Field(10.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0, description="Per POST to a partner webhook.")
    webhook_refresh_interval_s: float = Field(
        5.0, gt=0, description="How soon a webhook added with `hub webhook add` starts receiving."
    )
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none",
        description="Transport security to the SMTP relay: starttls (port 587), tls (implicit, port "
        "465), or none (the embedded sink, a relay on the same host).",
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user; needs starttls or tls.")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password; never logged.")
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle for the relay's certificate; unset: the system's."
    )
    smtp_connections: int = Field(
        4, ge=1, description="SMTP connections kept open and reused; as many notices go out at once."
    )
    notification_concurrency: int = Field(
        16,
        ge=1,
        description="Notices of different cases sent at once (one case's go out one after the other); "
        "email also waits for one of the HUB_SMTP_CONNECTIONS.",
    )
    notification_max_attempts: int = Field(6, ge=1, description="Then technical-failure.")
    notification_backoff_initial_s: float = Field(1.0, gt=0)
    notification_backoff_max_s: float = Field(300.0, gt=0)

    @field_validator("sms_provider_token")
    @classmethod
    def _refuse_placeholder_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS | {""}:
            raise ValueError("HUB_SMS_PROVIDER_TOKEN is a placeholder, not a token")
        return value

    @model_validator(mode="after")
    def _credentials_only_encrypted(self) -> NotificationSettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("HUB_SMTP_USERNAME and HUB_SMTP_PASSWORD go together")
        if self.smtp_username is not None and self.smtp_security == "none":
            raise ValueError(
                "SMTP AUTH needs HUB_SMTP_SECURITY=starttls or tls: a password is never sent in clear"
            )
        return self

    def smtp_account(self) -> SmtpAccount:
        return SmtpAccount(self.smtp_security, self.smtp_username, self.smtp_password, self.smtp_ca_file)

    @model_validator(mode="after")
    def _provider_needs_a_token(self) -> NotificationSettings:
        if self.sms_provider_url is not None and self.sms_provider_token is None:
            raise ValueError("HUB_SMS_PROVIDER_URL is set but HUB_SMS_PROVIDER_TOKEN is not")
        return self
