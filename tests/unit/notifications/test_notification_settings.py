"""The notifications service's own settings (HUB_ prefix): SMS provider and webhook knobs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notifications.settings import NotificationSettings


def test_sms_provider_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SMS_PROVIDER_URL", "https://sms.example.ch/v1/messages")
    monkeypatch.setenv("HUB_SMS_PROVIDER_TOKEN", "a-real-looking-token-123")
    settings = NotificationSettings()
    assert str(settings.sms_provider_url) == "https://sms.example.ch/v1/messages"
    assert settings.sms_provider_token is not None
    assert "a-real-looking-token-123" not in repr(settings) + str(settings)


def test_without_a_provider_url_there_is_no_sms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_SMS_PROVIDER_URL", raising=False)
    assert NotificationSettings().sms_provider_url is None


@pytest.mark.parametrize("token", ["changeme", "", "  secret "])
def test_a_placeholder_token_is_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        NotificationSettings(sms_provider_url="https://sms.example.ch", sms_provider_token=token)  # type: ignore[arg-type]


def test_a_provider_url_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_SMS_PROVIDER_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="HUB_SMS_PROVIDER_TOKEN"):
        NotificationSettings(sms_provider_url="https://sms.example.ch")  # type: ignore[arg-type]
