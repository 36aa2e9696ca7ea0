"""Stopping background tasks: cancel, then wait until each has really ended."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(*tasks: asyncio.Task | None) -> None:
    """Cancels every unfinished task and waits for it; what a task raised on its way out is
    dropped (it was being stopped)."""
    pending = [task for task in tasks if task is not None and not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
