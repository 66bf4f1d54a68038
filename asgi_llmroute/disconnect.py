"""Watching ``receive()`` for the client leaving (``http.disconnect``): the one loop every layer uses.

A layer that waits (for a concurrency slot, before a retry, while relaying) must notice a client that
goes away meanwhile, and stop working for nobody.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.types import Message, Receive

__all__ = ["run_while_connected", "until_disconnect"]

_T = TypeVar("_T")


async def until_disconnect(receive: Receive, keep: Callable[[Message], object] | None = None) -> None:
    """Return once ``receive()`` says ``http.disconnect``; every other message goes to ``keep`` (or is dropped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if keep is not None:
            keep(message)


async def run_while_connected(
    receive: Receive, work: Callable[[], Awaitable[_T]], *, keep: Callable[[Message], object] | None = None
) -> tuple[bool, _T | None]:
    """Run ``work()`` while watching ``receive()``: ``(True, its result)``, or ``(False, None)`` when the
    client left first (``work`` is then cancelled). Messages read meanwhile go to ``keep``."""
    connected = True
    result: _T | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal connected
            await until_disconnect(receive, keep)
            connected = False
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        result = await work()
        tg.cancel_scope.cancel()
    return connected, result if connected else None
