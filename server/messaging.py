"""Official-account message handling: verify, decrypt, parse, de-duplicate, route and render the reply."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
import time
from collections import OrderedDict

from server.links import entry_url
from server.logtags import short_openid
from server.statemap import Entry, StateMap
from server.wechat import messages as wxm
from server.wechat.crypto import CryptoError, MessageCrypto
from server.wechat.replies import SUCCESS, text_reply
from server.wechat.signature import check_signature, random_nonce

log = logging.getLogger("wxauth.messages")

DEFAULT_WELCOME = "欢迎关注！点击下面的链接开始：\n{links}"
DEFAULT_REPLY = "没有找到相关内容。回复下面的关键词试试：\n{keywords}"
RETRY_WAIT = 2.0  # a retry waits this long for the first delivery's reply (WeChat waits 5 s)
STORE_TIMEOUT = 0.5  # one MongoDB call on the reply path; WeChat gives the whole reply 5 s
STORE_BACKOFF = 5.0  # after a failure, replies skip MongoDB this long


class StoreDown(Exception):
    """MongoDB did not answer in time (or failed recently); the caller falls back."""


class Rejected(Exception):
    """The request is refused before any handling; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclasses.dataclass
class Delivery:
    """One POST /wx as the handler sees it: query arguments and the raw body."""

    signature: str | None
    timestamp: str | None
    nonce: str | None
    encrypt_type: str | None = None
    msg_signature: str | None = None
    body: bytes = b""


class LocalDeliveries:
    """The process's own memory of recent deliveries: a fallback when MongoDB is unreachable."""

    def __init__(self, ttl: float = 60.0, size: int = 10000):
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def claim(self, key: str) -> bool:
        now = time.monotonic()
        while self._items and next(iter(self._items.values()))[0] < now - self.ttl:
            self._items.popitem(last=False)
        if key in self._items:
            return False
        self._items[key] = (now, None)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return True

    def save(self, key: str, reply: str) -> None:
        if key in self._items:
            self._items[key] = (self._items[key][0], reply)

    def reply(self, key: str) -> str | None:
        item = self._items.get(key)
        return item[1] if item else None

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


class MessageService:
    """Turns one WeChat delivery into the body of the HTTP answer."""

    def __init__(self, config, store, state_map: StateMap, crypto: MessageCrypto | None, metrics=None):
        self.config = config
        self.store = store
        self.state_map = state_map
        self.crypto = crypto
        self.local = LocalDeliveries()
        self.metrics = metrics
        self._store_down_until = 0.0

    # ---- the pipeline ------------------------------------------------------------------------

    def verify_echo(self, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
        if not check_signature(self.config.token, signature, timestamp, nonce):
            raise Rejected(403, "bad signature")

    async def handle(self, delivery: Delivery) -> str:
        """Returns the response body; raises Rejected for requests that must change nothing."""
        if not check_signature(self.config.token, delivery.signature, delivery.timestamp, delivery.nonce):
            raise Rejected(403, "bad signature")
        encrypted = (delivery.encrypt_type or "raw").lower() == "aes"
        fields = self._parse(delivery.body, envelope=encrypted)
        if encrypted:
            fields = self._decrypt(delivery, fields)
        elif self.config.require_aes:
            raise Rejected(403, "plaintext message refused (WX_REQUIRE_AES=1)")
        try:
            message = wxm.parse_message(fields)
        except wxm.XmlError as exc:
            raise Rejected(400, f"malformed message: {exc.reason}") from None
        reply = await self._reply_once(message)
        if self.metrics:
            self.metrics.message(message)
        if reply == SUCCESS or not encrypted:
            return reply
        return self.crypto.encrypt_reply(reply, delivery.timestamp or str(int(time.time())), delivery.nonce or random_nonce())

    def _parse(self, body: bytes, envelope: bool = False) -> dict:
        if len(body) > wxm.MAX_BODY:
            raise Rejected(413, "body over 64 KiB")
        try:
            return wxm.parse_envelope(body) if envelope else wxm.parse_xml(body)
        except wxm.XmlError as exc:
            raise Rejected(400, f"malformed XML: {exc.reason}") from None

    def _decrypt(self, delivery: Delivery, envelope: dict) -> dict:
        if self.crypto is None:
            raise Rejected(400, "encrypted message but WX_AES_KEY is not set")
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise Rejected(400, "encrypt_type=aes without an Encrypt element")
        try:
            inner = self.crypto.decrypt_message(delivery.msg_signature or "", delivery.timestamp or "", delivery.nonce or "", encrypt)
        except CryptoError as exc:
            raise Rejected(403 if exc.reason == "bad signature" else 400, f"cannot decrypt: {exc.reason}") from None
        return self._parse(inner)

    # ---- retries: one reply per delivery, also across processes (wechat-protocol.md §4.4) -------

    async def _reply_once(self, message) -> str:
        key = message.dedup_key
        if not self.local.claim(key):
            # A retry reaching the process that has (or is still) handling the first delivery.
            return self._retried(message, await self._local_reply(key))
        try:
            reply = await self.reply_for(message)
        except Exception:
            self.local.forget(key)
            raise
        # One write per delivery: the first reply stored under the key wins, and a retry that
        # reached another process answers with that one instead of its own.
        try:
            first = await self._store_call("record delivery", self.store.record_delivery, key, reply)
        except StoreDown:
            first = None  # this process's memory is the only dedup left; answer anyway
        if first is not None:
            self.local.save(key, first)
            return self._retried(message, first)
        self.local.save(key, reply)
        return reply

    def _retried(self, message, reply: str) -> str:
        log.info("retry of %s from %s answered with the first reply", message.msg_type, short_openid(message.from_user))
        if self.metrics:
            self.metrics.dedup_hit()
        return reply

    async def _local_reply(self, key: str) -> str:
        deadline = time.monotonic() + RETRY_WAIT
        delay = 0.01
        while (reply := self.local.reply(key)) is None:
            if time.monotonic() > deadline:
                # The first delivery is still running and will answer; "success" stops more retries.
                return SUCCESS
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        return reply

    async def _store_call(self, what: str, fn, *args):
        """Runs one store call within STORE_TIMEOUT; raises StoreDown when MongoDB is not answering.

        After a failure the store is skipped for STORE_BACKOFF seconds, so that while MongoDB
        is down every reply still goes out at once instead of waiting on each call.
        """
        if time.monotonic() < self._store_down_until:
            raise StoreDown(what)
        try:
            return await asyncio.wait_for(fn(*args), STORE_TIMEOUT)
        except Exception as exc:
            if time.monotonic() >= self._store_down_until:
                log.warning("MongoDB did not answer (%s: %s); replying without it for %.0f s",
                            what, type(exc).__name__, STORE_BACKOFF)
            self._store_down_until = time.monotonic() + STORE_BACKOFF
            raise StoreDown(what) from exc

    # ---- routing -------------------------------------------------------------------------------

    async def reply_for(self, message) -> str:
        content = await self.content_for(message)
        if content is None:
            return SUCCESS
        return text_reply(message.from_user, message.to_user, content, int(time.time()))

    async def content_for(self, message) -> str | None:
        """The text to answer with, or None for "success" (nothing shown to the follower)."""
        smap = self.state_map
        if isinstance(message, wxm.SubscribeEvent):
            await self._mark_subscribed(message.from_user, True)
            entry = smap.get(message.scene) if message.scene else None
            return self.entry_text(entry) if entry else self.welcome_text()
        if isinstance(message, wxm.UnsubscribeEvent):
            await self._mark_subscribed(message.from_user, False)
            return None
        if isinstance(message, (wxm.ClickEvent, wxm.ScanEvent)):
            key = message.key if isinstance(message, wxm.ClickEvent) else message.scene
            entry = smap.get(key or "")
            return self.entry_text(entry) if entry else (self.default_text() if isinstance(message, wxm.ClickEvent) else None)
        if isinstance(message, wxm.TextMessage):
            entry = smap.match_text(message.content)
            return self.entry_text(entry) if entry else self.default_text()
        if isinstance(message, wxm.VoiceMessage) and message.recognition:
            entry = smap.match_text(message.recognition)
            return self.entry_text(entry) if entry else self.default_text()
        if isinstance(message, (wxm.ImageMessage, wxm.VoiceMessage, wxm.VideoMessage, wxm.ShortVideoMessage,
                                wxm.LocationMessage, wxm.LinkMessage, wxm.UnknownMessage)):
            return self.default_text()
        # VIEW, view_miniprogram, LOCATION reports, TEMPLATESENDJOBFINISH, unknown events: no reply.
        return None

    def entry_text(self, entry: Entry) -> str:
        return f'<a href="{html.escape(entry_url(self.config.app_host, entry.key))}">{html.escape(entry.title)}</a>'

    def _links(self) -> str:
        return "\n".join(self.entry_text(e) for e in sorted(self.state_map.entries.values(), key=lambda e: e.key))

    def _keywords(self) -> str:
        words = [e.keywords[0] for e in sorted(self.state_map.entries.values(), key=lambda e: e.key) if e.keywords]
        return "、".join(words)

    def welcome_text(self) -> str:
        template = self.state_map.settings.get("welcome") or DEFAULT_WELCOME
        return self._fill(template)

    def default_text(self) -> str:
        template = self.state_map.settings.get("default_reply") or DEFAULT_REPLY
        return self._fill(template)

    def _fill(self, template: str) -> str:
        # Plain replace, not str.format: an admin's text with braces must not raise.
        return template.replace("{links}", self._links()).replace("{keywords}", self._keywords()).strip()

    async def _mark_subscribed(self, openid: str, subscribed: bool) -> None:
        try:
            await self._store_call("subscribed", self.store.set_subscribed, openid, subscribed)
        except StoreDown:
            log.warning("could not record %s for %s", "subscribe" if subscribed else "unsubscribe", short_openid(openid))
