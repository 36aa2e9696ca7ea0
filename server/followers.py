"""Follower sync: the account's follower list into the users collection, resumable, one run at a time."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Callable

from server.leased import lease_holder
from server.tasks import cancel_and_wait
from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.followers")

JOB = "followers.sync"   # the job document in the `jobs` collection
BATCH = 100              # openids per /cgi-bin/user/info/batchget call (docs/wechat-protocol.md §14.3)
SLICE = 1000             # openids written per store round trip (a find, an insert, an update)
PARALLEL = 4             # batchget calls in flight at once
WRITERS = 2              # slices being written at once
LEASE_SECONDS = 60.0     # a process that died mid-sync holds the job this long at most
QUOTA = 45009            # §7: today's API quota is used up
# On 45009 (and on WeChat being unreachable) wait this long before each retry; then give up,
# keeping the cursor, so the next run resumes where this one stopped.
BACKOFF = (5.0, 30.0, 120.0)


class SyncBusy(Exception):
    """Another process is running the sync; `job` is its progress."""

    def __init__(self, job: dict | None):
        super().__init__("a follower sync is already running")
        self.job = job


def progress_of(job: dict | None, now: float | None = None) -> dict:
    """What the CLI and the admin show: status, seen, total, rate (followers/s) and ETA (s)."""
    if not job:
        return {"status": "never", "seen": 0, "total": None, "rate": None, "eta": None}
    now = time.time() if now is None else now
    seen, total = int(job.get("seen") or 0), job.get("total")
    ended = job.get("finished_at") if job.get("status") != "running" else None
    # The rate of this stretch: a resumed run counts from where it was taken up again.
    elapsed = max((ended or now) - float(job.get("taken_at") or job.get("started_at") or now), 1e-6)
    done_here = seen - int(job.get("resumed_at_seen") or 0)
    rate = done_here / elapsed if done_here > 0 else None
    eta = (max(int(total) - seen, 0) / rate) if rate and total is not None and job.get("status") == "running" else None
    return {"status": job.get("status"), "seen": seen, "total": total, "rate": rate, "eta": eta,
            "unsubscribed": job.get("unsubscribed"), "error": job.get("error"),
            "started_at": job.get("started_at"), "finished_at": job.get("finished_at")}


class FollowerSync:
    """Pages through /cgi-bin/user/get (10,000 a page) and batchget (100 a call), upserting every
    follower as subscribed with subscribe_time, unionid, subscribe_scene and tags (§14).

    The cursor (the page's next_openid) is saved after each page, under a lease in the `jobs`
    collection: a crash or a second process never runs the job twice, and the next run
    resumes from the last whole page (rewriting a page changes nothing). At the end, stored
    followers the list did not name are marked unsubscribed.
    """

    def __init__(self, store, wechat, tokens, *, backoff: tuple[float, ...] = BACKOFF,
                 lease_seconds: float = LEASE_SECONDS, clock: Callable[[], float] = time.time):
        self.store = store
        self.wechat = wechat
        self.tokens = tokens
        self.backoff = backoff
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.holder = lease_holder(self)
        self._task: asyncio.Task | None = None
        self._periodic: asyncio.Task | None = None

    async def progress(self) -> dict:
        return progress_of(await self.store.get_job(JOB), self.clock())

    def start_background(self) -> bool:
        """Starts a run in this process (the admin's button); False when one runs here already."""
        if self._task is not None and not self._task.done():
            return False
        self._task = asyncio.get_running_loop().create_task(self._run_logged())
        return True

    async def _run_logged(self) -> None:
        try:
            await self.run()
        except SyncBusy:
            log.info("follower sync not started: another process is running it")
        except Exception as exc:  # recorded on the job; the server goes on
            log.warning("follower sync stopped: %s", exc)

    def start_periodic(self, every_seconds: float, first_delay: float = 30.0) -> None:
        """WX_SYNC_FOLLOWERS_HOURS: a sync when the last one finished `every_seconds` ago (or
        never did), checked after start and then at each interval; the lease keeps it to one
        process however many run this."""
        async def loop() -> None:
            await asyncio.sleep(first_delay)
            while True:
                job = await self._job_or_none()
                due = float((job or {}).get("finished_at") or 0) + every_seconds
                if job is None or job.get("status") != "running" and self.clock() >= due:
                    await self._run_logged()
                    due = self.clock() + every_seconds
                await asyncio.sleep(max(due - self.clock(), 60.0))

        self._periodic = asyncio.get_running_loop().create_task(loop())

    async def _job_or_none(self) -> dict | None:
        try:
            return await self.store.get_job(JOB)
        except Exception as exc:  # MongoDB away: try again at the next check
            log.warning("follower sync: cannot read its job (%s)", type(exc).__name__)
            return {"status": "running"}

    async def stop(self) -> None:
        await cancel_and_wait(self._task, self._periodic)

    async def run(self, on_progress: Callable[[dict], None] | None = None) -> dict:
        """One whole sync (or the rest of an unfinished one); returns its final progress."""
        fresh = {"run": secrets.token_hex(8), "cursor": "", "seen": 0, "total": None, "finished_at": None,
                 "unsubscribed": None}
        job = await self.store.take_job(JOB, self.holder, self.lease_seconds, fresh)
        if job is None:
            raise SyncBusy(await self.store.get_job(JOB))
        run, cursor, seen = job["run"], job.get("cursor") or "", int(job.get("seen") or 0)
        await self.store.save_job(JOB, self.holder, {"resumed_at_seen": seen})
        if cursor:
            log.info("follower sync %s resumes after %d followers", run, seen)
        try:
            while True:
                page = await self._wechat(lambda token: self.wechat.user_list(token, cursor))
                openids = [o for o in ((page.get("data") or {}).get("openid") or []) if isinstance(o, str)]
                if not openids:
                    break  # §14.1: the end is a page without data (or an empty next_openid, below)
                await self._write_page(run, openids)
                seen += len(openids)
                cursor = page.get("next_openid") or ""
                kept = await self.store.save_job(JOB, self.holder, {
                    "cursor": cursor, "seen": seen, "total": page.get("total"),
                    "lease_until": self.clock() + self.lease_seconds})
                if not kept:
                    raise RuntimeError("lost the follower-sync lease to another process")
                if on_progress:
                    on_progress(progress_of(await self.store.get_job(JOB), self.clock()))
                if not cursor:
                    break
            unsubscribed = await self.store.mark_unsubscribed_since(run, float(job.get("started_at") or 0))
        except BaseException as exc:
            # Keep the cursor; end the lease so the next run (any process) resumes at once.
            reason = "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)[:300]
            await asyncio.shield(self.store.save_job(JOB, self.holder, {
                "status": "stopped", "error": reason, "lease_until": 0, "finished_at": self.clock()}))
            raise
        await self.store.save_job(JOB, self.holder, {"status": "done", "finished_at": self.clock(), "lease_until": 0,
                                                     "unsubscribed": unsubscribed, "cursor": ""})
        result = progress_of(await self.store.get_job(JOB), self.clock())
        log.info("follower sync %s done: %d followers, %d marked unsubscribed", run, seen, unsubscribed)
        if on_progress:
            on_progress(result)
        return result

    async def _write_page(self, run: str, openids: list[str]) -> None:
        """batchget in slices of 100 (PARALLEL calls at once); each SLICE of answers is written as
        soon as it is in, WRITERS slices at a time, so fetching and writing overlap."""
        calls, writers = asyncio.Semaphore(PARALLEL), asyncio.Semaphore(WRITERS)

        async def details(chunk: list[str]) -> list[dict]:
            async with calls:
                return await self._wechat(lambda token: self.wechat.user_info_batch(token, chunk))

        async def slice_(part: list[str]) -> None:
            answers = await asyncio.gather(*(details(part[i:i + BATCH]) for i in range(0, len(part), BATCH)))
            async with writers:
                await self.store.write_followers([info for answer in answers for info in answer], run)

        # A page is written whole before its cursor is saved: a crash redoes at most this page.
        await asyncio.gather(*(slice_(openids[i:i + SLICE]) for i in range(0, len(openids), SLICE)))

    async def _wechat(self, fn):
        """fn(access_token) through the token service, waiting out 45009 and outages (BACKOFF)."""
        for attempt in range(len(self.backoff) + 1):
            try:
                return await self.tokens.call(fn)
            except (WeChatError, WeChatUnavailable) as exc:
                retryable = isinstance(exc, WeChatUnavailable) or exc.errcode in (QUOTA, -1)
                if not retryable or attempt == len(self.backoff):
                    raise
                wait = self.backoff[attempt]
                log.warning("follower sync: %s; retrying in %.0f s", exc, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")
