"""Follower record writes kept while MongoDB is down: a bounded in-memory queue written in order."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import secrets
from typing import Any, Awaitable, Callable

from server.logtags import short_openid
from server.ratelog import RateLimitedLog

log = logging.getLogger("wxauth.store")

QUEUE_LIMIT = 10_000   # about 10 MB at most; a longer outage loses the newest writes, counted
WRITE_TIMEOUT = 0.5    # one attempt; MongoDB answers a healthy write in a few ms
FIRST_RETRY = 0.05
MAX_RETRY = 0.5        # with WRITE_TIMEOUT, a queued write waits about 1 s at most after MongoDB is back


@dataclasses.dataclass
class PendingWrite:
    """One idempotent store call: running it twice leaves the same record as running it once."""

    what: str
    openid: str
    call: Callable[..., Awaitable[Any]]
    args: tuple


def new_op_id() -> str:
    """The id a login write carries, so a write retried after a lost answer is not counted twice."""
    return secrets.token_hex(8)


class UserWrites:
    """Writes follower records (subscribe, unsubscribe, sign-in profile) in the background, in order.

    A follower who subscribes while MongoDB is down is still recorded once it answers again:
    the write waits here instead of being dropped, and the reply to WeChat never waits for it.
    """

    def __init__(self, metrics=None, limit: int = QUEUE_LIMIT):
        self.metrics = metrics
        self.limit = limit
        self._queue: collections.deque[PendingWrite] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._ratelog = RateLimitedLog(log, interval=30.0)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, what: str, openid: str, call: Callable[..., Awaitable[Any]], *args) -> bool:
        """Queues the write; False (counted and logged) when the queue is full."""
        if len(self._queue) >= self.limit:
            if self.metrics:
                self.metrics.user_write_dropped()
            self._ratelog.log(logging.ERROR, "overflow",
                              "write queue full (%d waiting while MongoDB is down); dropped %s of %s",
                              len(self._queue), what, short_openid(openid))
            return False
        self._queue.append(PendingWrite(what, openid, call, args))
        self._idle.clear()
        self._report()
        self._wake.set()
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Gives waiting writes a last chance, then stops; says how many were lost."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), flush_timeout)
        except asyncio.TimeoutError:
            pass
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        if self._queue:
            log.error("stopping with %d follower writes not written (MongoDB unreachable)", len(self._queue))

    async def wait_idle(self) -> None:
        """Returns once every queued write is in MongoDB (for tests and shutdown)."""
        await self._idle.wait()

    async def _run(self) -> None:
        delay = FIRST_RETRY
        down_since: int | None = None
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            write = self._queue[0]
            try:
                await asyncio.wait_for(write.call(*write.args), WRITE_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if down_since is None:
                    down_since = len(self._queue)
                    log.warning("MongoDB did not take a follower write (%s: %s); keeping %d in memory and retrying",
                                write.what, type(exc).__name__, len(self._queue))
                # The head is retried, never skipped: later writes of the same follower must not
                # overtake it (an unsubscribe before its subscribe would be lost).
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY)
                continue
            self._queue.popleft()
            self._report()
            delay = FIRST_RETRY
            if down_since is not None and not self._queue:
                log.info("MongoDB is back: wrote the follower writes kept while it was down")
                down_since = None

    def _report(self) -> None:
        if self.metrics:
            self.metrics.user_writes_pending(len(self._queue))
