"""QR codes for map entries: the link code of /wx/go/<key>, and the account's follow code (§12)."""

from __future__ import annotations

import logging

from server.links import entry_url
from server.qrimage import qr_png, qr_svg

log = logging.getLogger("wxauth.qrcodes")


class UnknownEntry(LookupError):
    """No map entry has this key."""


class EntryCodes:
    """The codes an admin prints on posters, one pair per map entry.

    The link code opens the entry's link in any phone's camera or WeChat; the follow code is
    a permanent parametric code (QR_LIMIT_STR_SCENE, scene = the key): scanning it follows the
    account and the follower gets the entry's link (docs/wechat-protocol.md §12.3). An account
    has at most 100,000 permanent codes, so each entry's ticket is stored and reused.
    """

    def __init__(self, config, store, wechat, tokens):
        self.config = config
        self.store = store
        self.wechat = wechat
        self.tokens = tokens

    def link_url(self, key: str) -> str:
        return entry_url(self.config.app_host, key)

    def link_png(self, key: str) -> bytes:
        return qr_png(self.link_url(key))

    def link_svg(self, key: str) -> str:
        return qr_svg(self.link_url(key))

    async def follow_code(self, key: str) -> dict:
        """{"ticket", "url"} of the entry's permanent follow code, created at most once."""
        entry = await self.store.get_state(key)
        if entry is None:
            raise UnknownEntry(key)
        stored = entry.get("follow_qr")
        if isinstance(stored, dict) and stored.get("url"):
            return stored
        created = await self.tokens.call(lambda token: self.wechat.qrcode_create_permanent(token, key))
        code = {"ticket": created["ticket"], "url": created["url"]}
        # Two admins at once: the first stored code wins and the other is not kept. Both name
        # the same scene, so either code works; only one is ever shown from here on.
        won = await self.store.set_state_follow_qr(key, code)
        if not won:
            entry = await self.store.get_state(key) or {}
            return entry.get("follow_qr") or code
        log.info("created the follow code of entry %s", key)
        return code

    async def follow_png(self, key: str) -> bytes:
        # The image is drawn from the code's url (what WeChat's showqrcode image encodes, §12.1):
        # no second host (mp.weixin.qq.com) to reach, and the same size as the link code.
        return qr_png((await self.follow_code(key))["url"])

    async def stored_follow_png(self, key: str) -> bytes | None:
        """The follow code's image when one was created before; never creates one."""
        stored = (await self.store.get_state(key) or {}).get("follow_qr")
        return qr_png(stored["url"]) if isinstance(stored, dict) and stored.get("url") else None
