"""Official-account message handling: verify, decrypt, parse, de-duplicate, route and render the reply."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import html
import logging
import re
import time
from collections import OrderedDict

from server.links import entry_key_of, entry_url
from server.logtags import short_openid
from server.ratelog import RateLimitedLog
from server.statemap import Entry, StateMap
from server.store import NonceReused
from server.wechat import messages as wxm
from server.wechat.crypto import CryptoError, MessageCrypto
from server.wechat.replies import SUCCESS, text_reply
from server.wechat.signature import check_signature, random_nonce

log = logging.getLogger("wxauth.messages")

DEFAULT_WELCOME = "欢迎关注！点击下面的链接开始：\n{links}"
DEFAULT_REPLY = "没有找到相关内容。回复下面的关键词试试：\n{keywords}"
KEYWORD_SEPARATOR = "、"  # between the keywords in DEFAULT_REPLY: content of the replies, like them
RETRY_WAIT = 2.0  # a retry waits this long for the first delivery's reply (WeChat waits 5 s)
STORE_TIMEOUT = 0.5  # one MongoDB call on the reply path; WeChat gives the whole reply 5 s
STORE_BACKOFF = 1.0  # after a failure, replies skip MongoDB this long (then try it again)
NONCE_SECONDS = 300  # how long a (timestamp, nonce) is remembered when WX_MAX_CLOCK_SKEW is 0
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits: str.isdigit() would take "１２" and "²"


class StoreDown(Exception):
    """MongoDB did not answer in time (or failed recently); the caller falls back."""


class Rejected(Exception):
    """The request is refused before any handling; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str, kind: str = "other"):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind  # a fixed word for logs and metrics: signature, stale, replay, ...


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


class LocalNonces:
    """The (timestamp, nonce) pairs this process has seen, with a digest of each message.

    MongoDB keeps the same record for every process (on the delivery claim); this copy refuses
    a replay in the same process before any store call, and still works while MongoDB is down.
    """

    def __init__(self, size: int = 50_000):
        self.size = size
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def check(self, nonce: str, digest: str, seconds: float) -> bool:
        """Records the pair; False when it was seen with another body (a replay)."""
        now = time.monotonic()
        while self._items and next(iter(self._items.values()))[0] < now:
            self._items.popitem(last=False)
        seen = self._items.get(nonce)
        if seen is not None:
            return seen[1] == digest
        self._items[nonce] = (now + seconds, digest)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return True


class MessageService:
    """Turns one WeChat delivery into the body of the HTTP answer."""

    def __init__(self, config, store, state_map: StateMap, crypto: MessageCrypto | None, metrics=None,
                 writes=None, clock=time.time, funnel=None):
        self.config = config
        self.funnel = funnel  # server.funnel.Funnel: which entries' links were shown
        self.store = store
        self.state_map = state_map
        self.crypto = crypto
        self.local = LocalDeliveries()
        self.nonces = LocalNonces()
        self.metrics = metrics
        self.writes = writes  # server.userwrites.UserWrites: follower writes that survive an outage
        self.clock = clock
        self.ratelog = RateLimitedLog(log)
        self._store_down_until = 0.0

    # ---- the pipeline ------------------------------------------------------------------------

    def verify_echo(self, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
        self._check_signature(signature, timestamp, nonce)
        self._check_timestamp(timestamp)

    async def handle(self, delivery: Delivery) -> str:
        """Returns the response body; raises Rejected for requests that must change nothing."""
        self._check_signature(delivery.signature, delivery.timestamp, delivery.nonce)
        self._check_timestamp(delivery.timestamp)
        encrypted = (delivery.encrypt_type or "raw").lower() == "aes"
        fields = self._parse(delivery.body, envelope=encrypted)
        key_index = 0
        inner = delivery.body
        if encrypted:
            inner, key_index = self._decrypt(delivery, fields)
            fields = self._parse(inner)
        elif self.config.require_aes:
            raise Rejected(403, "plaintext message refused (WX_REQUIRE_AES=1)", "plaintext")
        try:
            message = wxm.parse_message(fields)
        except wxm.XmlError as exc:
            raise Rejected(400, f"malformed message: {exc.reason}", "malformed") from None
        original_id = self.config.original_id
        if original_id and message.to_user != original_id:
            raise Rejected(403, "message addressed to another account (ToUserName is not WX_ORIGINAL_ID)", "addressee")
        # The digest is of the message, not of the request body: a retry may be encrypted anew.
        digest = hashlib.sha256(inner).hexdigest()
        nonce_key = self._check_nonce(delivery, digest)
        reply = await self._reply_once(message, digest, nonce_key)
        if self.metrics:
            self.metrics.message(message)
        if reply == SUCCESS or not encrypted:
            return reply
        # The reply goes out under the key the message came with: while WeChat still uses the
        # key before a change (WX_AES_KEY_PREVIOUS), it decrypts replies with that one (§2).
        return self.crypto.encrypt_reply(reply, delivery.timestamp, delivery.nonce or random_nonce(),
                                         key_index=key_index)

    def _check_signature(self, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
        if not check_signature(self.config.token, signature, timestamp, nonce):
            raise Rejected(403, "bad signature", "signature")

    def _check_timestamp(self, timestamp: str | None) -> None:
        """A signed request must be recent: an old signed URL replayed later is refused (§18)."""
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise Rejected(400, "timestamp must be decimal digits", "timestamp")
        skew = self.config.max_clock_skew
        if not skew:
            return
        off = int(timestamp) - self.clock()
        if abs(off) > skew:
            self.ratelog.warning(
                "stale", "refused /wx: its timestamp is %.0f s %s this server's clock (WX_MAX_CLOCK_SKEW=%d); "
                "if every message is refused, check this machine's clock (NTP)",
                abs(off), "ahead of" if off > 0 else "behind", skew)
            raise Rejected(403, "timestamp outside WX_MAX_CLOCK_SKEW", "stale")

    def _check_nonce(self, delivery: Delivery, digest: str) -> str:
        """The "timestamp:nonce" key of the delivery, refused when it came with another message.

        The signature covers token, timestamp and nonce but not the body (§1): a signed query
        string that leaked (a proxy's access log) could carry any body. Within the freshness
        window a (timestamp, nonce) may come back only with the message it first came with.
        """
        nonce_key = f"{delivery.timestamp}:{delivery.nonce}"
        if len(nonce_key) > 80:  # WeChat's are about 20 characters; keep the indexed field small
            nonce_key = "sha256:" + hashlib.sha256(nonce_key.encode()).hexdigest()
        if not self.nonces.check(nonce_key, digest, self._nonce_seconds()):
            raise Rejected(403, "timestamp and nonce already used with another message (replay)", "replay")
        return nonce_key

    def _nonce_seconds(self) -> float:
        # A pair must be remembered as long as its timestamp can still pass _check_timestamp.
        return 2 * self.config.max_clock_skew if self.config.max_clock_skew else NONCE_SECONDS

    def _parse(self, body: bytes, envelope: bool = False) -> dict:
        if len(body) > wxm.MAX_BODY:
            raise Rejected(413, "body over 64 KiB", "too_large")
        try:
            return wxm.parse_envelope(body) if envelope else wxm.parse_xml(body)
        except wxm.XmlError as exc:
            raise Rejected(400, f"malformed XML: {exc.reason}", "malformed") from None

    def _decrypt(self, delivery: Delivery, envelope: dict) -> tuple[bytes, int]:
        """(inner XML, index of the key that decrypted it: 0 current, 1 WX_AES_KEY_PREVIOUS)."""
        if self.crypto is None:
            raise Rejected(400, "encrypted message but WX_AES_KEY is not set", "decrypt")
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise Rejected(400, "encrypt_type=aes without an Encrypt element", "decrypt")
        try:
            return self.crypto.decrypt_message_with_key(delivery.msg_signature or "", delivery.timestamp or "",
                                                        delivery.nonce or "", encrypt)
        except CryptoError as exc:
            if exc.reason == "bad signature":
                raise Rejected(403, "cannot decrypt: bad signature", "signature") from None
            raise Rejected(400, f"cannot decrypt: {exc.reason}", "decrypt") from None

    # ---- retries: one reply per delivery, also across processes (docs/wechat-protocol.md §4.4) -------

    async def _reply_once(self, message, digest: str, nonce_key: str) -> str:
        # The claim is the dedup key plus a digest of the message itself: WeChat's retry is the
        # same message, so it shares the claim; a forged message that borrows a genuine one's
        # MsgId (or sender+time+event) gets a claim of its own and cannot decide that one's reply.
        key = f"{message.dedup_key}#{digest[:32]}"
        if not self.local.claim(key):
            # A retry reaching the process that has (or is still) handling the first delivery.
            return self._retried(message, await self._local_reply(key))
        try:
            reply, shown = await self.reply_for(message)
            # One write per delivery: the first reply stored under the key wins, and a retry that
            # reached another process answers with that one instead of its own.
            try:
                first = await self._store_call("record delivery", self.store.record_delivery, key, reply,
                                               nonce_key, self._nonce_seconds())
            except NonceReused:
                # Another process saw this (timestamp, nonce) with another message.
                raise Rejected(403, "timestamp and nonce already used with another message (replay)", "replay") from None
            except StoreDown:
                first = None  # this process's memory is the only dedup left; answer anyway
        except BaseException:
            self.local.forget(key)
            raise
        if first is not None:
            self.local.save(key, first)
            return self._retried(message, first)
        self.local.save(key, reply)
        # Side effects only for the delivery that won its claim: never for a retry or a replay.
        self.apply_effects(message, shown)
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
        NonceReused is an answer, not a failure, and passes through.
        """
        if time.monotonic() < self._store_down_until:
            raise StoreDown(what)
        try:
            return await asyncio.wait_for(fn(*args), STORE_TIMEOUT)
        except NonceReused:
            raise
        except Exception as exc:
            if time.monotonic() >= self._store_down_until:
                log.warning("MongoDB did not answer (%s: %s); replying without it for %.0f s",
                            what, type(exc).__name__, STORE_BACKOFF)
            self._store_down_until = time.monotonic() + STORE_BACKOFF
            raise StoreDown(what) from exc

    # ---- side effects: follower records, written in the background (server/userwrites.py) ------

    def apply_effects(self, message, shown: Entry | None = None) -> None:
        """`shown`: the entry whose link the reply showed (reply_for found it), for the funnel."""
        if self.funnel is not None and shown is not None:
            self.funnel.count(shown.key, "shown")
        if isinstance(message, (wxm.SubscribeEvent, wxm.UnsubscribeEvent)):
            subscribed = isinstance(message, wxm.SubscribeEvent)
            what = "subscribe" if subscribed else "unsubscribe"
            if self.writes is not None:
                self.writes.submit(what, message.from_user, self.store.set_subscribed, message.from_user, subscribed)
        elif isinstance(message, wxm.TemplateSendJobFinishEvent) and message.msg_id.isascii() and message.msg_id.isdigit():
            # §13.4: how a notification ended, onto its send (server/notify.py records the msgid).
            if self.writes is not None:
                self.writes.submit("template delivery", message.from_user, self.store.record_template_event,
                                   int(message.msg_id), message.status[:64])

    # ---- routing -------------------------------------------------------------------------------

    async def reply_for(self, message) -> tuple[str, Entry | None]:
        """(the reply body, the entry whose link it shows): "success" when nothing is shown."""
        content, shown = self._answer(message)
        if content is None:
            return SUCCESS, shown
        return text_reply(message.from_user, message.to_user, content, int(time.time())), shown

    def _answer(self, message) -> tuple[str | None, Entry | None]:
        """(the text to answer with or None, the map entry whose link it shows, if any).

        Pure: it changes nothing, so a delivery that loses its claim leaves no trace.
        """
        smap = self.state_map
        entry = None
        if isinstance(message, wxm.SubscribeEvent):
            entry = smap.get(message.scene) if message.scene else None
            return (self.entry_text(entry) if entry else self.welcome_text()), entry
        if isinstance(message, wxm.UnsubscribeEvent):
            return None, None
        if isinstance(message, (wxm.ClickEvent, wxm.ScanCodeWaitEvent)):
            # scancode_waitmsg: WeChat shows "消息接收中" and waits for this answer, like a click.
            entry = smap.get(message.key or "")
            return (self.entry_text(entry) if entry else self.default_text()), entry
        if isinstance(message, wxm.ScanEvent):
            entry = smap.get(message.scene or "")
            return (self.entry_text(entry) if entry else None), entry
        if isinstance(message, wxm.TextMessage):
            entry = smap.match_text(message.content)
            return (self.entry_text(entry) if entry else self.default_text()), entry
        if isinstance(message, wxm.VoiceMessage) and message.recognition:
            entry = smap.match_text(message.recognition)
            return (self.entry_text(entry) if entry else self.default_text()), entry
        if isinstance(message, (wxm.ImageMessage, wxm.VoiceMessage, wxm.VideoMessage, wxm.ShortVideoMessage,
                                wxm.LocationMessage, wxm.LinkMessage, wxm.UnknownMessage)):
            return self.default_text(), None
        if isinstance(message, wxm.ViewEvent):
            # A menu button that opens an entry's link: no reply, but the link was in front of them.
            return None, smap.get(entry_key_of(message.url or "", self.config.app_host) or "")
        # view_miniprogram, LOCATION reports, TEMPLATESENDJOBFINISH, unknown events: no reply.
        return None, None

    def entry_text(self, entry: Entry) -> str:
        return f'<a href="{html.escape(entry_url(self.config.app_host, entry.key))}">{html.escape(entry.title)}</a>'

    def _links(self) -> str:
        return "\n".join(self.entry_text(e) for e in sorted(self.state_map.entries.values(), key=lambda e: e.key))

    def _keywords(self) -> str:
        words = [e.keywords[0] for e in sorted(self.state_map.entries.values(), key=lambda e: e.key) if e.keywords]
        return KEYWORD_SEPARATOR.join(words)

    def welcome_text(self) -> str:
        template = self.state_map.settings.get("welcome") or DEFAULT_WELCOME
        return self._fill(template)

    def default_text(self) -> str:
        template = self.state_map.settings.get("default_reply") or DEFAULT_REPLY
        return self._fill(template)

    def _fill(self, template: str) -> str:
        # Plain replace, not str.format: an admin's text with braces must not raise.
        return template.replace("{links}", self._links()).replace("{keywords}", self._keywords()).strip()
