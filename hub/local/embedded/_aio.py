"""Running a short coroutine from blocking code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a throwaway event loop.

    The embedded parts are blocking and meant for ``asyncio.to_thread``; if one
    is nevertheless called on an event loop's thread, the coroutine gets a
    helper thread, because a second loop cannot run on that thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    with ThreadPoolExecutor(1, thread_name_prefix="embedded-probe") as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
