"""When to retry: the backoff schedule and how HTTP answers count."""

from __future__ import annotations

import pytest

from services.notifications.domain import http_failure, retry_delay
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError


def test_the_backoff_doubles_after_each_attempt() -> None:
    schedule = [retry_delay(attempt, initial_s=1.0, max_s=300.0) for attempt in range(1, 7)]
    assert schedule == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_the_backoff_is_capped() -> None:
    assert retry_delay(20, initial_s=1.0, max_s=300.0) == 300.0
    assert retry_delay(20, initial_s=1.0, max_s=300.0, jitter=1.5) == 300.0


def test_jitter_stretches_a_delay_by_its_factor() -> None:
    assert retry_delay(3, initial_s=0.5, max_s=300.0, jitter=1.5) == pytest.approx(3.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_answer_is_delivered(status: int) -> None:
    assert http_failure(status) is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_overload_and_server_errors_are_temporary(status: int) -> None:
    assert http_failure(status) is TemporaryDeliveryError


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 422])
def test_other_answers_are_permanent(status: int) -> None:
    assert http_failure(status) is PermanentDeliveryError
