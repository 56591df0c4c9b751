"""The health and metrics server binds where the settings say: loopback on a laptop, every
interface in a pod, where the kubelet and Prometheus reach it from outside."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from hub.runtime.health import HealthServer
from hub.runtime.settings import HubSettings


async def _ready() -> dict[str, bool | int | str]:
    return {"ok_database": True}


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as answer:
        return answer.status, bytes(answer.read())


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.asyncio
async def test_the_server_binds_the_configured_address_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_HEALTH_HOST", "127.0.0.2")
    settings = HubSettings()
    server = HealthServer(_ready, host=settings.health_host)
    await server.start()
    try:
        status, _ = await asyncio.to_thread(_get, "127.0.0.2", server.port, "/readyz")
        elsewhere = await asyncio.to_thread(_reachable, "127.0.0.1", server.port)
    finally:
        await server.stop()
    assert status == 200
    assert not elsewhere


@pytest.mark.asyncio
async def test_every_interface_when_the_setting_says_so() -> None:
    server = HealthServer(_ready, host=HubSettings(health_host="0.0.0.0").health_host)
    await server.start()
    try:
        on_loopback = await asyncio.to_thread(_get, "127.0.0.1", server.port, "/livez")
        on_another_loopback = await asyncio.to_thread(_get, "127.0.0.3", server.port, "/livez")
    finally:
        await server.stop()
    assert on_loopback[0] == on_another_loopback[0] == 200


def test_loopback_is_the_default() -> None:
    assert HubSettings().health_host == "127.0.0.1"
