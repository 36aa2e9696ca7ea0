"""Template notifications: bulk sends as jobs in MongoDB, resumed after a crash without a second message."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Callable

from server.links import entry_url
from server.logtags import short_openid
from server.i18n import T, Text
from server.leased import lease_holder
from server.tasks import cancel_and_wait
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.templates import check_data, send_data, template_keys

log = logging.getLogger("wxauth.notify")

KIND = "notify"
CHUNK = 50             # recipients looked up, sent and recorded together
IN_FLIGHT = 8          # template/send calls at once (the rate limiter paces them)
LEASE_SECONDS = 30.0   # a runner that died holds its job this long at most
RUNNER_POLL = 2.0      # how often each serving process looks for a job to run
RETRY_LATER = 600.0    # a job stopped by WeChat trouble is tried again this much later
BURST_SECONDS = 0.2    # the most sending time a catch-up makes up at once
# §13.6: -1 means "busy, retry later"; 45009 is the daily quota (waited out briefly, then the
# job stops and is retried later).
BACKOFF = (1.0, 5.0, 30.0)
NOT_FOLLOWING, INVALID_OPENID, QUOTA, BUSY = 43004, 40003, 45009, -1


class NotifyInvalid(ValueError):
    """A notification that cannot be sent as given; `problems` maps form fields to reasons (Texts:
    render each with i18n.say; str() of the exception is English, for logs)."""

    def __init__(self, problems: dict[str, Text]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class JobBusy(Exception):
    """Another process is running this job."""


class Pacer:
    """On average `rate` sends a second (WeChat answers bursts with -1, §13.1). Time lost while a
    chunk's outcomes are written is made up, but never more than BURST_SECONDS of it at once."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.slack = max(self.interval, BURST_SECONDS)
        self.next: float | None = None

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.next is None:
            self.next = now - self.interval  # no backlog to make up at the start
        self.next = max(self.next + self.interval, now - self.slack)
        if self.next > now:
            await asyncio.sleep(self.next - now)


def progress_of(job: dict | None, now: float | None = None) -> dict:
    """sent, failed, remaining, rate (/s) and ETA (s) of a job, for the CLI and the admin."""
    if not job:
        return {}
    now = time.time() if now is None else now
    sent, failed, total = int(job.get("sent") or 0), int(job.get("failed") or 0), int(job.get("total") or 0)
    remaining = max(total - sent - failed, 0)
    done_here = sent + failed - int(job.get("done_at_take") or 0)
    elapsed = max((job.get("finished_at") or now) - float(job.get("taken_at") or now), 1e-6)
    rate = done_here / elapsed if done_here > 0 and job.get("taken_at") else None
    eta = remaining / rate if rate and job.get("status") == "running" else None
    return {"id": job["_id"], "status": job.get("status"), "template": job.get("template_title"), "entry": job.get("entry"),
            "sent": sent, "failed": failed, "remaining": remaining, "total": total, "rate": rate, "eta": eta,
            "error": job.get("error"), "created_at": job.get("created_at"), "by": job.get("by")}


class Notifications:
    """Creates, runs, resumes and cancels notification jobs (docs/wechat-protocol.md §13).

    A job names a template, its data, a map entry (the message's `url` is the entry's
    /wx/go/<key> link, so tapping it signs the follower in on that page) and its recipients:
    some openids, every subscribed follower, or one tag. Recipients go in openid order; after
    each chunk their outcomes are written (one document per job and recipient) and the job's
    cursor moves past them. A runner that dies mid-chunk leaves at most that chunk without
    outcomes: the next runner skips recipients that have one and re-sends the rest with the
    same client_msg_id, which WeChat delivers once (§13.2). One runner per job (a lease).
    """

    def __init__(self, config, store, wechat, tokens, *, rate: float | None = None, backoff=BACKOFF,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.wechat = wechat
        self.tokens = tokens
        self.rate = rate or config.notify_rate
        self.backoff = backoff
        self.clock = clock
        self.holder = lease_holder(self)
        self._tasks: dict[str, asyncio.Task] = {}
        self._runner: asyncio.Task | None = None

    # ---- what an admin picks from ------------------------------------------------------------

    async def templates(self) -> list[dict]:
        """The account's templates, each with its data `keys`."""
        found = await self.tokens.call(self.wechat.templates)
        return [{**t, "keys": template_keys(t.get("content", ""))} for t in found if t.get("template_id")]

    # ---- jobs ---------------------------------------------------------------------------------

    async def create(self, template_id: str, entry_key: str, values: dict[str, str], target: dict, by: str,
                     run_here: bool = False) -> str:
        """A new job; NotifyInvalid names what is wrong. With `run_here` the job is created
        already held by this process (the command line runs it itself)."""
        problems: dict[str, Text] = {}
        template = next((t for t in await self.templates() if t["template_id"] == template_id), None)
        if template is None:
            problems["template"] = T("this account has no such template")
        else:
            problems.update(check_data(template.get("content", ""), values))
        entry = await self.store.get_state(entry_key) if entry_key else None
        if entry is None:
            problems["entry"] = T("no map entry with this key")
        target = _clean_target(target, problems)
        if problems:
            raise NotifyInvalid(problems)
        now = self.clock()
        job_id = f"{KIND}:{secrets.token_hex(6)}"
        doc = {"_id": job_id, "kind": KIND, "status": "queued", "template_id": template_id,
               "template_title": template.get("title", ""), "entry": entry_key,
               "url": entry_url(self.config.app_host, entry_key), "data": send_data(values), "target": target,
               "cursor": "", "sent": 0, "failed": 0, "total": await self.store.count_recipients(target),
               "created_at": now, "by": by}
        if run_here:
            doc.update(status="running", holder=self.holder, lease_until=now + LEASE_SECONDS, taken_at=now,
                       started_at=now, done_at_take=0)
        await self.store.create_job(doc)
        log.info("notification job %s created by %s: %d recipients", job_id, by, doc["total"])
        return job_id

    async def progress(self, job_id: str, with_deliveries: bool = False) -> dict:
        """With `with_deliveries`, a finished job also counts the delivery reports (§13.4) that
        came back so far: one pass over its outcomes, so not on every poll of a running job."""
        progress = progress_of(await self.store.get_job(job_id), self.clock())
        if with_deliveries and progress.get("status") in ("done", "cancelled"):
            outcomes = await self.store.notify_outcomes(job_id)
            progress.update(delivered=outcomes.get("delivered", 0), delivery_failed=outcomes.get("delivery_failed", 0))
        return progress

    async def recent(self, limit: int = 20) -> list[dict]:
        now = self.clock()
        return [progress_of(job, now) for job in await self.store.list_jobs(KIND, limit)]

    async def cancel(self, job_id: str) -> bool:
        """Stops a job after the chunk in flight; what was sent stays sent."""
        return await self.store.set_job_status(job_id, "cancelled", ("queued", "running", "stopped"))

    def start_background(self, job_id: str) -> None:
        if job_id in self._tasks and not self._tasks[job_id].done():
            return
        self._tasks[job_id] = asyncio.get_running_loop().create_task(self._run_logged(job_id))

    async def _run_logged(self, job_id: str) -> None:
        try:
            await self.run(job_id)
        except JobBusy:
            pass
        except Exception as exc:
            log.warning("notification job %s stopped: %s", job_id, exc)

    def start_runner(self) -> None:
        """Every serving process looks for jobs to run; the lease lets one run each."""
        async def loop() -> None:
            while True:
                await asyncio.sleep(RUNNER_POLL)
                try:
                    for job in await self.store.runnable_jobs(KIND, self.clock()):
                        self.start_background(job["_id"])
                except Exception as exc:  # MongoDB away: look again later
                    log.debug("notification runner: %s", type(exc).__name__)

        self._runner = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._runner, *self._tasks.values())

    # ---- running a job --------------------------------------------------------------------------

    async def run(self, job_id: str, on_progress: Callable[[dict], None] | None = None) -> dict:
        job = await self.store.take_job(job_id, self.holder, LEASE_SECONDS, {}, restart=False)
        if job is None:
            current = await self.store.get_job(job_id)
            if current is None:
                raise LookupError(f"no job {job_id}")
            if current.get("status") in ("done", "cancelled"):
                return progress_of(current, self.clock())
            raise JobBusy(job_id)
        await self.store.save_job(job_id, self.holder, {"done_at_take": int(job.get("sent") or 0) + int(job.get("failed") or 0)})
        cursor, sent, failed = job.get("cursor") or "", int(job.get("sent") or 0), int(job.get("failed") or 0)
        pacer = Pacer(self.rate)
        try:
            while True:
                current = await self.store.get_job(job_id)
                if current is None or current.get("status") != "running" or current.get("holder") != self.holder:
                    log.info("notification job %s: %s", job_id, (current or {}).get("status", "gone"))
                    return progress_of(current, self.clock())
                chunk = await self.store.notify_recipients(job["target"], cursor, CHUNK)
                if not chunk:
                    break
                done = await self.store.notified(job_id, chunk)
                outcomes, trouble = await self._send_chunk(job, [o for o in chunk if o not in done], pacer)
                # What went out is written before anything else happens, even when WeChat refused the rest.
                await self.store.record_notified(outcomes)
                sent += sum(1 for o in outcomes if o["status"] == "sent")
                failed += sum(1 for o in outcomes if o["status"] == "failed")
                progress = {"sent": sent, "failed": failed, "lease_until": self.clock() + LEASE_SECONDS}
                if trouble is None:
                    cursor = progress["cursor"] = chunk[-1]
                if not await self.store.save_job(job_id, self.holder, progress):
                    raise RuntimeError("lost the job's lease")
                if trouble is not None:
                    raise trouble  # the chunk's unsent recipients stay after the cursor
                if on_progress:
                    on_progress(progress_of(await self.store.get_job(job_id), self.clock()))
        except (WeChatError, WeChatUnavailable) as exc:
            await self.store.save_job(job_id, self.holder, {
                "status": "stopped", "error": str(exc)[:300], "lease_until": 0, "retry_at": self.clock() + RETRY_LATER})
            raise
        except BaseException as exc:
            reason = "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)[:300]
            await asyncio.shield(self.store.save_job(job_id, self.holder, {"status": "stopped", "error": reason,
                                                                           "lease_until": 0,
                                                                           "retry_at": self.clock()}))
            raise
        await self.store.set_job_status(job_id, "done", ("running",))
        await self.store.save_job(job_id, self.holder, {"finished_at": self.clock(), "lease_until": 0})
        result = progress_of(await self.store.get_job(job_id), self.clock())
        log.info("notification job %s done: %d sent, %d failed", job_id, sent, failed)
        if on_progress:
            on_progress(result)
        return result

    async def _send_chunk(self, job: dict, openids: list[str], pacer: Pacer) -> tuple[list[dict], Exception | None]:
        """Sends to `openids`; returns the outcomes of those that got one, and the first WeChat
        trouble that stopped the others (every send in flight finishes and is counted first)."""
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(openid: str) -> dict:
            async with gate:
                return await self._send_one(job, openid, pacer)

        results = await asyncio.gather(*(one(openid) for openid in openids), return_exceptions=True)
        outcomes = [r for r in results if isinstance(r, dict)]
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, (WeChatError, WeChatUnavailable)):
                raise error
        return outcomes, (errors[0] if errors else None)

    async def _send_one(self, job: dict, openid: str, pacer: Pacer) -> dict:
        message = {"touser": openid, "template_id": job["template_id"], "url": job["url"], "data": job["data"],
                   # The same id on every attempt, in every process: WeChat sends it once (§13.2).
                   "client_msg_id": f"{job['_id'].split(':', 1)[1]}{openid}"[:64]}
        outcome = {"_id": f"{job['_id']}:{openid}", "job": job["_id"], "openid": openid, "at": self.clock()}
        for attempt in range(len(self.backoff) + 1):
            await pacer.wait()
            try:
                msgid = await self.tokens.call(lambda token: self.wechat.template_send(token, message))
                return {**outcome, "status": "sent", "msgid": msgid}
            except WeChatError as exc:
                if exc.errcode in (BUSY, QUOTA) and attempt < len(self.backoff):
                    await asyncio.sleep(self.backoff[attempt])
                    continue
                if exc.errcode in (BUSY, QUOTA):
                    raise  # the job stops and is retried later; this recipient has no outcome yet
                if exc.errcode == NOT_FOLLOWING:
                    await self.store.set_subscribed(openid, False)
                log.info("notification to %s refused: errcode %d", short_openid(openid), exc.errcode)
                return {**outcome, "status": "failed", "errcode": exc.errcode}
            except WeChatUnavailable:
                if attempt < len(self.backoff):
                    await asyncio.sleep(self.backoff[attempt])
                    continue
                raise
        raise AssertionError("unreachable")


def _clean_target(target: dict, problems: dict) -> dict:
    if target.get("all"):
        return {"all": True}
    if target.get("tag") not in (None, ""):
        tag = str(target["tag"]).strip()
        if not tag.isascii() or not tag.isdigit():
            problems["target"] = T("a tag is a number (WeChat's tag id)")
            return {}
        return {"tag": int(tag)}
    to = [o.strip() for o in target.get("to") or [] if isinstance(o, str) and o.strip()]
    if not to:
        problems["target"] = T("choose who receives it: all followers, a tag or openids")
    elif len(to) > 10_000 or any(len(o) > 64 or not o.replace("_", "").replace("-", "").isalnum() for o in to):
        problems["target"] = T("malformed openids, or more than 10,000")
    return {"to": to}
