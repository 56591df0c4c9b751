"""Liveness and readiness over plain HTTP, for supervisors and deployment probes.

``/livez`` answers while the event loop runs; ``/readyz`` answers 200 only when the
service's own checks pass (database reachable, partitions assigned, backlog bounded);
``/metrics`` gives counters and gauges in the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

ReadinessCheck = Callable[[], Awaitable[dict[str, bool | int | str]]]
MetricsText = Callable[[], Awaitable[str]]


class HealthServer:
    def __init__(
        self,
        readiness: ReadinessCheck,
        *,
        metrics: MetricsText | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._readiness, self._metrics, self._host, self._port = readiness, metrics, host, port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            path = request_line.split(" ")[1] if " " in request_line else "/"
            content_type = "application/json"
            body: dict[str, object]
            if path == "/metrics" and self._metrics is not None:
                code, content_type = 200, "text/plain; version=0.0.4"
                payload = (await self._metrics()).encode()
            else:
                if path == "/livez":
                    code, body = 200, {"status": "alive"}
                elif path == "/readyz":
                    checks = await self._readiness()
                    ready = all(v is True for k, v in checks.items() if k.startswith("ok_"))
                    code, body = (200 if ready else 503), {"ready": ready, **checks}
                else:
                    code, body = 404, {"error": "not found"}
                payload = json.dumps(body).encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
            writer.write(
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
