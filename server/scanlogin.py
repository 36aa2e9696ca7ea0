"""Scan to sign in (扫码登录): a PC browser shows a one-time code, a phone in WeChat confirms it.

Official-account web authorization works only inside WeChat (docs/wechat-protocol.md §17), so a
PC browser cannot sign in by itself. It shows a QR code of a one-time scan URL; the follower
opens it in WeChat, signs in there as usual, reads what will happen and taps 确认登录; the PC
page, waiting on a long poll, then receives the same session a phone sign-in gets.

Scanning is how accounts get hijacked, so each step is narrow:
- the token is random, single use and lives SCAN_SECONDS;
- it is bound to the PC browser that asked for it (a hash of a secret in that browser's cookie),
  so the URL opened from another computer signs nothing in;
- the first phone to open it owns it; another phone gets a refusal;
- confirming needs a tap on a page that names the entry, the computer and the time, and
  moves pending -> scanned -> confirmed -> used once each.

A token has a `purpose`: "follower" (the above), "admin_login" (the PC signs in to /admin as
the admin whose WeChat is the phone's) or "admin_bind" (the signed-in admin `admin` binds the
phone's WeChat). A token is finished only for its own purpose; an admin_login scan by a WeChat
bound to no admin ends "denied".
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from server.logtags import short_openid
from server.store import utcnow

log = logging.getLogger("wxauth.scanlogin")

SCAN_SECONDS = 120        # the code's life; the PC page offers a fresh one after
WAIT_SECONDS = 25.0       # one long poll; under common proxy read timeouts (nginx: 60 s)
POLL_INTERVAL = 0.1       # how often one query checks every waiting token changed by another process
MAX_WAITERS = 10_000      # long polls held by one process; more get 503 (bounded memory)
STATUSES = ("pending", "scanned", "confirmed", "cancelled", "used", "expired", "denied")
STEPS = ("started", "scanned", "confirmed", "cancelled", "finished", "expired", "other_phone",
         "wrong_browser", "repeated", "denied", "wrong_purpose")
PURPOSES = ("follower", "admin_login", "admin_bind")


def new_secret() -> str:
    """The PC browser's secret: its cookie holds it, the token only its hash."""
    return secrets.token_urlsafe(24)


def _binding(secret: str | None) -> str:
    return hashlib.sha256((secret or "").encode("utf-8", "replace")).hexdigest()


class TooManyWaiters(Exception):
    """This process already holds MAX_WAITERS long polls."""


class ScanLoginService:
    """The scan tokens in MongoDB, and the PC pages waiting for theirs to change."""

    def __init__(self, store, metrics=None):
        self.store = store
        self.metrics = metrics
        self._waiters: dict[str, list[tuple[str, asyncio.Future]]] = {}
        self._poller: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self._waiters.values())

    # ---- the PC ---------------------------------------------------------------------------------

    async def start(self, key: str | None, title: str, target: str, scope: str, pc_secret: str,
                    pc_ip: str, pc_agent: str, purpose: str = "follower", admin: str | None = None) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown scan purpose {purpose!r}")
        token = secrets.token_hex(16)
        now = utcnow()
        await self.store.create_scan({
            "_id": token, "purpose": purpose, "admin": admin, "key": key, "title": title, "target": target,
            "scope": scope,
            "pc": _binding(pc_secret), "pc_ip": pc_ip, "pc_agent": pc_agent, "status": "pending",
            "openid": None, "created_at": now,
            "expires_at": now + datetime.timedelta(seconds=SCAN_SECONDS),
        })
        self._count("started")
        return token

    def belongs(self, doc: dict | None, pc_secret: str | None) -> bool:
        """True when `doc` was started by the browser holding `pc_secret` (constant time)."""
        return doc is not None and hmac.compare_digest(doc.get("pc", ""), _binding(pc_secret))

    async def status_for_pc(self, token: str, pc_secret: str | None) -> str | None:
        """The token's status for the PC that started it; None for any other browser."""
        doc = await self.store.get_scan(token)
        if not self.belongs(doc, pc_secret):
            if doc is not None:
                self._count("wrong_browser")
            return None
        return _status(doc)

    async def wait(self, token: str, pc_secret: str | None, since: str, timeout: float = WAIT_SECONDS) -> str | None:
        """The status once it differs from `since`, or after `timeout`; None for another browser."""
        doc = await self.store.get_scan(token)
        if not self.belongs(doc, pc_secret):
            if doc is not None:
                self._count("wrong_browser")
            return None
        status = _status(doc)
        if status != since or status in ("used", "expired", "cancelled", "denied"):
            return status
        if self.waiting >= MAX_WAITERS:
            raise TooManyWaiters()
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(token, []).append((since, future))
        self._ensure_poller()
        try:
            # Read again once registered: a change made while the first read was in flight
            # would otherwise reach nobody until the next poll.
            doc = await self.store.get_scan(token)
            status = _status(doc) if doc else "expired"
            if status != since:
                return status
            left = (_aware(doc["expires_at"]) - utcnow()).total_seconds()
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, min(timeout, left + 0.5)))
        except asyncio.TimeoutError:
            # Gone by now means expired and cleaned up (TTL): this browser owned it a moment ago.
            return await self.status_for_pc(token, pc_secret) or "expired"
        finally:
            waiters = self._waiters.get(token, [])
            waiters[:] = [w for w in waiters if w[1] is not future]
            if not waiters:
                self._waiters.pop(token, None)

    async def finish(self, token: str, pc_secret: str | None, purpose: str = "follower") -> dict | None:
        """The confirmed sign-in for the PC that started it, exactly once (then "used"), only
        for its own purpose: an admin's code never gives a follower session, nor the reverse."""
        doc = await self.store.get_scan(token)
        if not self.belongs(doc, pc_secret):
            self._count("wrong_browser")
            return None
        if doc.get("purpose", "follower") != purpose:
            self._count("wrong_purpose")
            return None
        done = await self.store.move_scan(token, "confirmed", "used")
        if done is not None:
            self._changed(token, "used")
            self._count("finished")
            log.info("scan login %s: signed the computer in as %s", token[:6], short_openid(done["openid"]))
        return done

    # ---- the phone ------------------------------------------------------------------------------

    async def open_on_phone(self, token: str, openid: str) -> tuple[dict | None, str | None]:
        """(the token, None) when this phone may confirm it; else (doc or None, the problem):
        "unknown", "expired", "other_phone", or "done" (already confirmed, cancelled or used)."""
        doc = await self.store.move_scan(token, "pending", "scanned", fields={"openid": openid})
        if doc is not None:
            self._changed(token, "scanned")
            self._count("scanned")
            return doc, None
        doc = await self.store.get_scan(token)
        if doc is None:
            return None, "unknown"
        status = _status(doc)
        if doc.get("openid") not in (None, openid):
            self._count("other_phone")
            log.warning("scan login %s opened by a second phone (%s); refused", token[:6], short_openid(openid))
            return doc, "other_phone"
        if status == "expired":
            self._count("expired")
            return doc, "expired"
        if status == "scanned":
            return doc, None  # the same phone reloading the confirm page
        return doc, "done"

    async def decide(self, token: str, openid: str, confirm: bool) -> tuple[dict | None, str | None]:
        """Confirms or cancels for the phone that scanned; (doc, None) or (doc or None, problem)."""
        to = "confirmed" if confirm else "cancelled"
        doc = await self.store.move_scan(token, "scanned", to, match={"openid": openid})
        if doc is not None:
            self._changed(token, to)
            self._count(to)
            return doc, None
        doc = await self.store.get_scan(token)
        if doc is None:
            return None, "unknown"
        if doc.get("openid") != openid:
            self._count("other_phone")
            return doc, "other_phone"
        status = _status(doc)
        if status == "expired":
            self._count("expired")
            return doc, "expired"
        self._count("repeated")
        return doc, "done"

    async def deny(self, token: str, openid: str) -> None:
        """Ends a scanned admin_login token: the phone's WeChat is bound to no active admin."""
        if await self.store.move_scan(token, "scanned", "denied", match={"openid": openid}) is not None:
            self._changed(token, "denied")
            self._count("denied")

    # ---- telling waiting PC pages ---------------------------------------------------------------

    def _changed(self, token: str, status: str) -> None:
        for since, future in self._waiters.get(token, []):
            if since != status and not future.done():
                future.set_result(status)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """Another process may confirm: one query every POLL_INTERVAL asks what changed lately.

        The query looks back a second beyond the last one, so a change is not missed when the
        processes' clocks differ a little; seeing a change twice is harmless. Expiry needs no
        query: each wait ends at its token's deadline and then reads the status itself.
        """
        last = time.time() - 1.0
        while self._waiters:
            await asyncio.sleep(POLL_INTERVAL)
            started = time.time()
            try:
                changes = await asyncio.wait_for(self.store.scan_changes(last - 1.0), 2.0)
            except Exception as exc:
                log.warning("could not check waiting scan logins: %s", type(exc).__name__)
                continue
            last = started
            for token, status in changes:
                if token in self._waiters and status in STATUSES:
                    self._changed(token, status)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass

    def _count(self, step: str) -> None:
        if self.metrics:
            self.metrics.scan_step(step)


def _aware(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    return utcnow()  # an unreadable time counts as now: the token is treated as expired


def _status(doc: dict) -> str:
    status = doc.get("status")
    if status in ("pending", "scanned") and _aware(doc.get("expires_at")) <= utcnow():
        return "expired"
    return status if status in STATUSES else "expired"
