"""A credential WeChat hands out for a while (access_token, jsapi_ticket): cached in MongoDB, fetched by one process at a time."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from typing import Callable

from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.tokens")

# docs/wechat-protocol.md §8.2: the platform renews a stable token 5 minutes before it expires and
# keeps the old one valid until then, so refreshing inside that window gets the new token.
REFRESH_AHEAD = 300.0
# A credential with less than this left is not handed out even while another process refreshes.
MIN_USABLE = 30.0
# The refresh lease: long enough for one fetch (4.5 s budget; a ticket fetch may first need a
# token, so two), short enough that a process that died holding it does not stall the others long.
LEASE_SECONDS = 10.0
# How long a caller waits for another process's refresh before giving up.
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.05


def lease_holder(owner: object) -> str:
    """How `owner` is named on the leases it takes in MongoDB: host, object and a random part,
    so an operator can tell the processes apart and no two owners ever share a name."""
    return f"{socket.gethostname()}:{id(owner):x}:{secrets.token_hex(4)}"


class LeasedCredential:
    """One cached credential, document `key` of the `tokens` collection.

    The process that takes the lease (Store.take_token_lease, a find_one_and_update) fetches;
    the others wait briefly and read the cache again, so several processes never fetch at once
    and never invalidate each other's credentials. Subclasses name the credential and fetch it.
    """

    name = "credential"   # for log lines; never the value itself
    endpoint = ""         # the WeChat endpoint that hands it out, for errors

    def __init__(self, store, key: str, *, clock: Callable[[], float] = time.time,
                 refresh_ahead: float = REFRESH_AHEAD, lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = WAIT_SECONDS, poll_seconds: float = POLL_SECONDS):
        self.store = store
        self.key = key
        self.clock = clock
        self.refresh_ahead = refresh_ahead
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.holder = lease_holder(self)
        self._memory: tuple[str, float] | None = None  # (value, expires_at) as last seen
        self._lock = asyncio.Lock()

    async def fetch(self) -> tuple[str, float]:
        """Asks WeChat for a new value: (value, seconds it is valid). Raises WeChatError/WeChatUnavailable."""
        raise NotImplementedError

    def _fresh(self, expires_at: float, now: float) -> bool:
        return expires_at - now > self.refresh_ahead

    async def value(self) -> str:
        """A valid value: from memory, else from MongoDB, else fetched under the lease."""
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
            doc = await self.store.cached_token(self.key) or {}
            value, expires_at = doc.get("token"), float(doc.get("expires_at") or 0.0)
            if value and self._fresh(expires_at, now):
                self._memory = (value, expires_at)
                return value
            leased = await self.store.take_token_lease(self.key, self.holder, self.lease_seconds)
            if leased:
                # The previous holder may have stored a value between our read and our lease:
                # the document as leased says, and then nobody fetches twice.
                value, expires_at = leased.get("token"), float(leased.get("expires_at") or 0.0)
                if value and self._fresh(expires_at, now):
                    await self._release()
                    self._memory = (value, expires_at)
                    return value
                return await self._refresh(value if value and expires_at - now > MIN_USABLE else None)
            # Another process is refreshing. A value that still works is good enough meanwhile
            # (§8.2: the old stable token stays valid until it expires; so does an old ticket).
            if value and expires_at - now > MIN_USABLE:
                return value
            if loop.time() >= deadline:
                log.warning("gave up waiting %.1f s for another process to refresh the %s", self.wait_seconds, self.name)
                raise WeChatUnavailable(self.endpoint, "timeout", "another process holds the refresh lease")
            await asyncio.sleep(self.poll_seconds)

    async def _refresh(self, still_usable: str | None) -> str:
        """Called holding the lease: fetches a value and stores it (which also ends the lease)."""
        try:
            value, expires_in = await self.fetch()
        except (WeChatError, WeChatUnavailable) as exc:
            await self._release()
            if still_usable:
                # Refreshing ahead of time failed; the current value works for a while yet.
                log.warning("%s refresh failed (%s); using the current one until it expires", self.name, exc)
                return still_usable
            raise
        except BaseException:
            await self._release()
            raise
        expires_at = self.clock() + expires_in
        await self.store.store_token(self.key, value, expires_at)
        self._memory = (value, expires_at)
        log.info("fetched a new %s for %s, valid %.0f s", self.name, self.key, expires_in)
        return value

    async def _release(self) -> None:
        try:
            await self.store.release_token_lease(self.key, self.holder)
        except Exception as exc:  # the lease runs out on its own
            log.warning("could not release the %s lease: %s", self.name, type(exc).__name__)

    async def invalidate(self, value: str) -> bool:
        """Forgets `value` after WeChat refused it; the cache is expired only if it still holds
        this very value, so a process never throws away a newer one another process just stored."""
        if self._memory and self._memory[0] == value:
            self._memory = None
        return await self.store.expire_token(self.key, value)


def answer_value(answer: dict, field: str, endpoint: str) -> tuple[str, float]:
    """(value, expires_in) from a WeChat answer such as {"access_token": …, "expires_in": 7200}."""
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        raise WeChatUnavailable(endpoint, "bad_response", f"no {field} in the answer")
    try:
        expires_in = float(answer.get("expires_in") or 7200)
    except (TypeError, ValueError):
        raise WeChatUnavailable(endpoint, "bad_response", "expires_in is not a number") from None
    return value, expires_in
