"""The global access_token: one cached stable token per AppID in MongoDB, refreshed by one process at a time."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from typing import Awaitable, Callable, TypeVar

from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.tokens")

T = TypeVar("T")

# docs/wechat-protocol.md §8.2: the platform renews a stable token 5 minutes before it expires and
# keeps the old one valid until then, so refreshing inside that window gets the new token.
REFRESH_AHEAD = 300.0
# A token with less than this left is not handed out even while another process refreshes.
MIN_USABLE = 30.0
# The refresh lease: long enough for one stable_token call (4.5 s budget), short enough that a
# process that died holding it does not stall the others for long.
LEASE_SECONDS = 10.0
# How long a caller waits for another process's refresh before giving up.
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.05
# docs/wechat-protocol.md §7: invalid credential / not latest, invalid token, expired token.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
ENDPOINT = "/cgi-bin/stable_token"


class TokenService:
    """Hands out the account's global access_token and runs WeChat calls that need it.

    DESIGN.md "Global access_token": one token per AppID in the `tokens` collection; the process
    that takes the lease (Store.take_token_lease, a find_one_and_update) calls
    /cgi-bin/stable_token in normal mode, the others wait briefly and read the cache again,
    so several processes never fetch at once and never invalidate each other's tokens.
    """

    def __init__(self, store, wechat, appid: str, *, clock: Callable[[], float] = time.time,
                 refresh_ahead: float = REFRESH_AHEAD, lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = WAIT_SECONDS, poll_seconds: float = POLL_SECONDS):
        self.store = store
        self.wechat = wechat
        self.appid = appid
        self.clock = clock
        self.refresh_ahead = refresh_ahead
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        # Names the lease holder in MongoDB, for an operator reading the tokens collection.
        self.holder = f"{socket.gethostname()}:{id(self):x}:{secrets.token_hex(4)}"
        self._memory: tuple[str, float] | None = None  # (token, expires_at) as last seen
        self._lock = asyncio.Lock()

    # ---- the token ------------------------------------------------------------------------------

    def _fresh(self, expires_at: float, now: float) -> bool:
        return expires_at - now > self.refresh_ahead

    async def token(self) -> str:
        """A valid access_token: from memory, else from MongoDB, else fetched under the lease."""
        memory = self._memory
        if memory and self._fresh(memory[1], self.clock()):
            return memory[0]
        # One refresh per process at a time; the others in this process reuse its result.
        async with self._lock:
            return await self._load_or_refresh()

    async def _load_or_refresh(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            now = self.clock()
            doc = await self.store.cached_token(self.appid) or {}
            token, expires_at = doc.get("token"), float(doc.get("expires_at") or 0.0)
            if token and self._fresh(expires_at, now):
                self._memory = (token, expires_at)
                return token
            if await self.store.take_token_lease(self.appid, self.holder, self.lease_seconds):
                return await self._refresh(token if token and expires_at - now > MIN_USABLE else None)
            # Another process is refreshing. A token that still works is good enough meanwhile
            # (§8.2: the old stable token stays valid until it expires).
            if token and expires_at - now > MIN_USABLE:
                return token
            if loop.time() >= deadline:
                log.warning("gave up waiting %.1f s for another process to refresh the access_token", self.wait_seconds)
                raise WeChatUnavailable(ENDPOINT, "timeout", "another process holds the refresh lease")
            await asyncio.sleep(self.poll_seconds)

    async def _refresh(self, still_usable: str | None) -> str:
        """Called holding the lease: fetches a token and stores it (which also ends the lease)."""
        try:
            answer = await self.wechat.stable_token()
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeChatUnavailable(ENDPOINT, "bad_response", "no access_token in the answer")
            expires_in = float(answer.get("expires_in") or 7200)
        except (WeChatError, WeChatUnavailable) as exc:
            await self._release()
            if still_usable:
                # Refreshing ahead of time failed; the current token works for a while yet.
                log.warning("access_token refresh failed (%s); using the current token until it expires", exc)
                return still_usable
            raise
        except BaseException:
            await self._release()
            raise
        expires_at = self.clock() + expires_in
        await self.store.store_token(self.appid, token, expires_at)
        self._memory = (token, expires_at)
        log.info("fetched a new access_token for %s, valid %.0f s", self.appid, expires_in)
        return token

    async def _release(self) -> None:
        try:
            await self.store.release_token_lease(self.appid, self.holder)
        except Exception as exc:  # the lease runs out on its own
            log.warning("could not release the token lease: %s", type(exc).__name__)

    async def invalidate(self, token: str) -> bool:
        """Forgets `token` after WeChat refused it; the cache is expired only if it still holds
        this very token, so a process never throws away a newer token another one just stored."""
        if self._memory and self._memory[0] == token:
            self._memory = None
        return await self.store.expire_token(self.appid, token)

    # ---- calls that need the token -------------------------------------------------------------

    async def call(self, fn: Callable[[str], Awaitable[T]]) -> T:
        """Runs `fn(access_token)`; when WeChat says the token is invalid or expired
        (40001/40014/42001, docs/wechat-protocol.md §7), refreshes it and retries once."""
        token = await self.token()
        try:
            return await fn(token)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            expired = await self.invalidate(token)
            log.info("%s refused the access_token (errcode %s); %s, retrying once", exc.endpoint, exc.errcode,
                     "cache expired" if expired else "a newer token is already cached")
        return await fn(await self.token())
