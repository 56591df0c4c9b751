"""Settings of the notifications service only, read from the environment (prefix ``HUB_``).

They live here rather than in ``hub/settings.py`` because no other service needs them;
the variables share the hub's prefix so operators configure everything the same way.
"""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.runtime.settings import ENV_PREFIX

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
    def _provider_needs_a_token(self) -> NotificationSettings:
        if self.sms_provider_url is not None and self.sms_provider_token is None:
            raise ValueError("HUB_SMS_PROVIDER_URL is set but HUB_SMS_PROVIDER_TOKEN is not")
        return self
