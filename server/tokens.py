"""The global access_token: one cached stable token per AppID in MongoDB, refreshed by one process at a time."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, TypeVar

from server.leased import LeasedCredential, answer_value
from server.wechat.client import WeChatError

log = logging.getLogger("wxauth.tokens")

T = TypeVar("T")

# docs/wechat-protocol.md §7: invalid credential / not latest, invalid token, expired token.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
ENDPOINT = "/cgi-bin/stable_token"


class TokenService(LeasedCredential):
    """Hands out the account's global access_token and runs WeChat calls that need it.

    DESIGN.md "Global access_token": one token per AppID in the `tokens` collection (document
    `_id` = appid), fetched from /cgi-bin/stable_token in normal mode under the lease of
    server/leased.py, so processes never invalidate each other's tokens.
    """

    name = "access_token"
    endpoint = ENDPOINT

    def __init__(self, store, wechat, appid: str, **options):
        super().__init__(store, appid, **options)
        self.wechat = wechat
        self.appid = appid

    async def fetch(self) -> tuple[str, float]:
        return answer_value(await self.wechat.stable_token(), "access_token", ENDPOINT)

    async def token(self) -> str:
        """A valid access_token: from memory, else from MongoDB, else fetched under the lease."""
        return await self.value()

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
