"""The funnel of every map entry: per-day counters of links shown, taps, sign-ins, landings and failures."""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import time
from typing import Callable

from server.tasks import cancel_and_wait

log = logging.getLogger("wxauth.funnel")

# The steps a follower takes, then the ways a sign-in fails (server/authorize.py's results).
STEPS = ("shown", "tap", "authorized", "landed")
FAILURES = ("cancelled", "cookies", "wechat_error", "snapshot", "other_failure")
STAGES = STEPS + FAILURES
_RESULTS = {"ok": "authorized", "ok_web": "authorized", "cancelled": "cancelled", "cookies_missing": "cookies",
            "snapshot_user": "snapshot", "network": "wechat_error", "timeout": "wechat_error",
            "bad_response": "wechat_error", "state_mismatch": "other_failure", "state_reused": "other_failure",
            "reuse_timeout": "other_failure", "store_error": "other_failure"}
FLUSH_SECONDS = 5.0
MAX_PENDING = 10_000   # (day, entry, stage) counters held between flushes; beyond that, dropped and logged
DAYS = 30


def stage_of(result: str) -> str | None:
    """The funnel stage of an authorization result; None for those that are not one (a restart, a reuse)."""
    if result.startswith("errcode_"):
        return "wechat_error"
    return _RESULTS.get(result)


def day_of(at: float) -> int:
    """The UTC day as a number, 20261202: the embedded server takes strings that look like dates
    for dates, and then neither matches nor compares them as written."""
    return day_number(datetime.datetime.fromtimestamp(at, datetime.timezone.utc).date())


def day_number(day: datetime.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


class Funnel:
    """Counts in memory and adds them to MongoDB every FLUSH_SECONDS with one bulk $inc.

    A reply or a sign-in only bumps a dict entry: counting never waits on MongoDB and never
    fails a request. Counters are per UTC day and entry (documents `f:<key>:<yyyymmdd>` in `funnel`
    with a field `n_<stage>` each),
    so the cost follows entries x days, not traffic. Only keys of the state map are counted:
    the label set is bounded by the map, whatever is requested.
    """

    def __init__(self, store, state_map=None, *, clock: Callable[[], float] = time.time,
                 flush_seconds: float = FLUSH_SECONDS):
        self.store = store
        self.state_map = state_map
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.pending: collections.Counter = collections.Counter()
        self.dropped = 0
        self._task: asyncio.Task | None = None

    def count(self, key: str | None, stage: str) -> None:
        if not key or stage not in STAGES:
            return
        if self.state_map is not None and self.state_map.get(key) is None:
            return
        slot = (day_of(self.clock()), key, stage)
        if slot not in self.pending and len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("funnel: %d counters waiting for MongoDB; further counts are dropped", MAX_PENDING)
            return
        self.pending[slot] += 1

    def count_result(self, key: str | None, result: str) -> None:
        stage = stage_of(result)
        if stage:
            self.count(key, stage)

    async def flush(self) -> None:
        batch, self.pending = self.pending, collections.Counter()
        if not batch:
            return
        try:
            await self.store.add_funnel_counts(batch)
        except Exception as exc:
            # Kept for the next flush (still bounded: count() stops adding at MAX_PENDING).
            log.warning("funnel: counts not written yet (%s)", type(exc).__name__)
            batch.update(self.pending)
            self.pending = batch
            return
        if self.dropped:
            log.warning("funnel: %d counts were dropped while MongoDB did not answer", self.dropped)
            self.dropped = 0

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.flush_seconds)
                await self.flush()

        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()

    # ---- reading ----------------------------------------------------------------------------------

    async def daily(self, key: str, days: int = DAYS) -> list[tuple[datetime.date, dict[str, int]]]:
        """One entry's counts for each of the last `days` UTC days, oldest first (zeros included)."""
        return (await self.daily_all(days, key)).get(key) or self._days(days, {})

    async def daily_all(self, days: int = DAYS, key: str | None = None) -> dict[str, list]:
        """Every entry's (or one entry's) per-day counts over the last `days` days, in one query."""
        first = self._first_day(days)
        by_key: dict[str, dict[str, dict]] = {}
        for doc in await self.store.funnel_days(key, day_number(first)):
            by_key.setdefault(doc["key"], {})[doc["day"]] = {stage: doc.get(f"n_{stage}", 0) for stage in STAGES}
        return {k: self._days(days, stored) for k, stored in by_key.items()}

    async def totals(self, days: int = DAYS) -> dict[str, dict[str, int]]:
        """Every entry's counts over the last `days` days."""
        return {key: {stage: sum(c[stage] for _, c in rows) for stage in STAGES}
                for key, rows in (await self.daily_all(days)).items()}

    def _first_day(self, days: int) -> datetime.date:
        today = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc).date()
        return today - datetime.timedelta(days=days - 1)

    def _days(self, days: int, stored: dict[int, dict]) -> list[tuple[datetime.date, dict[str, int]]]:
        first = self._first_day(days)
        out = []
        for i in range(days):
            day = first + datetime.timedelta(days=i)
            counts = stored.get(day_number(day), {})
            out.append((day, {stage: int(counts.get(stage, 0)) for stage in STAGES}))
        return out


def conversion(counts: dict[str, int]) -> list[tuple[str, int, float | None]]:
    """(step, count, share of the step before) along shown → tap → authorized → landed."""
    rows, before = [], None
    for step in STEPS:
        n = counts.get(step, 0)
        rows.append((step, n, (n / before) if before else None))
        before = n
    return rows
