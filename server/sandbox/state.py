"""All in-memory state of the WeChat stand-in, and the operations tests and control calls use."""

import asyncio
import base64
import collections
import copy
import hashlib
import hmac
import itertools
import re
import secrets
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .population import Population
from .templatebook import DEDUP_SECONDS, DEMO_TEMPLATES

CODE_TTL = 300  # §6.3: an authorization code expires 5 minutes after it is issued
REFRESH_TTL = 30 * 24 * 3600  # §6.5: refresh tokens live 30 days
STABLE_RENEW_WINDOW = 300  # §8.2: the platform renews a stable token 5 minutes before expiry

OPENID_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


@dataclass
class Follower:
    """A WeChat user as this account sees them (§6.4, §6.6)."""

    openid: str
    nickname: str
    headimgurl: str = ""  # "" = no avatar (§6.6); a path starting with "/" is on the sandbox
    unionid: str | None = None
    is_snapshotuser: bool = False  # §6.2: a snapshot-page virtual user; its data are virtual
    subscribed: bool = True

    def public(self) -> dict:
        return asdict(self)


# The account's name and a new follower's nickname: the account's content, in its language.
APP_NAME = "wxauth 沙箱公众号"
NEW_NICKNAME = "新用户"


# The demo followers' openids, named once for the tests and benchmarks: 28 characters, the
# length of real official-account openids.
ALICE = "oSandboxAlice000000000000000"
BOB = "oSandboxBob00000000000000000"
MALLORY = "oSandboxMallory0000000000000"
SNAPSHOT = "oSandboxSnapshot000000000000"


def _demo_followers() -> list[Follower]:
    return [
        Follower(ALICE, "Alice 小明", "/static/avatars/alice.svg",
                 "uSandboxAlice000000000000000"),
        Follower(BOB, "Bob 老王", "/static/avatars/bob.svg",
                 "uSandboxBob00000000000000000"),
        # Every page that shows a nickname must escape it; this one proves it.
        Follower(MALLORY, "<script>alert(1)</script>",
                 "/static/avatars/mallory.svg", "uSandboxMallory0000000000000"),
        # §6.2 snapshot page: WeChat hands out a virtual account with placeholder profile.
        Follower(SNAPSHOT, "微信用户", "/static/avatars/snapshot.svg",
                 None, is_snapshotuser=True),
    ]


@dataclass
class Code:
    openid: str
    scope: str
    issued_at: float
    used: bool = False
    app: str = "mp"  # "mp": the official account; "web": the Open Platform website app (§16)


@dataclass
class Token:
    """A web access_token (§6.4), refresh_token (§6.5) or global access_token (§8)."""

    value: str
    kind: str  # "web", "refresh", "token" (/cgi-bin/token), "stable" (/cgi-bin/stable_token),
    #            or a getticket ticket (§9): "jsapi" or "wx_card"
    expires_at: float
    openid: str = ""
    scope: str = ""
    superseded: bool = False  # §8.1/§8.2: replaced by a newer one -> 40001 "not latest"


@dataclass
class Fault:
    """An injected failure for the next `count` calls of `path` (count 0: until reset)."""

    path: str
    errcode: int | None = None
    html: bool = False
    status: int = 502
    delay: float = 0.0
    drop: bool = False
    count: int = 1


class Sandbox:
    """The state of one stand-in WeChat: followers, codes, tokens, menu, conversations, faults.

    Every control operation of the HTTP control API exists here as a method, so a test that
    holds the object needs no HTTP for set-up. `clock` is injectable, and `advance()` moves
    time forward, so expiry is tested without sleeping.
    """

    def __init__(self, appid: str, secret: str, token: str, original_id: str = "gh_sandbox0000",
                 aes_key: str | None = None, server_url: str | None = None,
                 latency: float = 0.0, *, app_name: str = APP_NAME,
                 followers: list[Follower] | None = None,
                 token_ttl: int = 7200, clock=time.time, encrypt_mode: str = "safe",
                 callback_domain: str | None = None, reply_timeout: float = 5.0,
                 web_appid: str | None = None, web_secret: str | None = None, population: int = 0):
        if encrypt_mode not in ("safe", "compatible"):
            raise ValueError("encrypt_mode must be 'safe' or 'compatible'")
        self.appid = appid
        self.secret = secret
        # §16: a website app on the same Open Platform account: other openids, the same unionids.
        self.web_appid = web_appid
        self.web_secret = web_secret
        self.token = token
        self.original_id = original_id
        self.aes_key = aes_key
        self.encrypt_mode = encrypt_mode  # §2: used only when aes_key is set
        self.server_url = server_url
        self.app_name = app_name
        # §6.1: when set, redirect_uri must be on exactly this host (else page 10003).
        self.callback_domain = callback_domain
        # §5.1: WeChat gives the server 5 s; tests shorten it rather than wait.
        self.reply_timeout = reply_timeout
        self.base_url: str | None = None  # set by start_sandbox once the port is known
        # /cgi-bin/user/get and batchget: the followers below, then `population` synthetic ones.
        self.population = Population(self, population)
        # Template messages (§13): the account's templates, what was delivered to whom, and
        # whether delivery events are pushed back (a benchmark may turn that off).
        self.templates = copy.deepcopy(DEMO_TEMPLATES)
        self.template_events = True
        self.template_deliveries: collections.Counter = collections.Counter()  # (touser, client_msg_id) -> sends
        self._template_recent: dict[tuple, tuple[int, float]] = {}
        self.background: set = set()
        self._clock = clock
        self._initial = {"latency": latency, "token_ttl": token_ttl,
                         "followers": copy.deepcopy(followers or _demo_followers())}
        self._ids = itertools.count(1)
        self._in_flight = 0
        self._idle_waiters: list[asyncio.Future] = []
        self.reset()

    # -- time ----------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (codes and tokens expire; nothing sleeps)."""
        self._offset += seconds

    # -- requests in flight ----------------------------------------------------------------

    def request_started(self) -> None:
        self._in_flight += 1

    def request_finished(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            for waiter in self._idle_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._idle_waiters.clear()

    async def idle(self) -> None:
        """Return once no API request is in flight (e.g. one still serving its latency)."""
        if self._in_flight:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    # -- control -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state right after construction."""
        self.latency: float = self._initial["latency"]
        self.token_ttl: int = self._initial["token_ttl"]
        self.calls: collections.Counter = collections.Counter()
        self.faults: list[Fault] = []
        self.followers: dict[str, Follower] = {
            f.openid: copy.deepcopy(f) for f in self._initial["followers"]}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.current: dict[str, Token] = {}  # kind -> the latest global token of that kind
        self.menu: dict | None = None
        self.qr_codes: dict[str, dict] = {}  # id -> {"id", "ticket", "scene", "permanent"}
        self.web_logins: dict[str, dict] = {}  # qrconnect uuid -> {"params", "status", "redirect"}
        self.conversations: dict[str, list[dict]] = collections.defaultdict(list)
        self._offset = 0.0
        self._msg_ids = itertools.count(secrets.randbelow(10**15) + 10**18)

    def configure(self, settings: dict) -> None:
        """Apply a control body: latency, token_ttl, advance, fail (one dict or a list)."""
        if "latency" in settings:
            self.latency = max(0.0, float(settings["latency"]))
        if "token_ttl" in settings:
            self.token_ttl = max(1, int(settings["token_ttl"]))
        if "advance" in settings:
            self.advance(float(settings["advance"]))
        if "reply_timeout" in settings:
            self.reply_timeout = max(0.01, float(settings["reply_timeout"]))
        fails = settings.get("fail")
        if isinstance(fails, dict):
            fails = [fails]
        for spec in fails or ():
            self.fail(**spec)

    def fail(self, path: str, *, errcode: int | None = None, html: bool = False,
             status: int = 502, delay: float = 0.0, drop: bool = False, count: int = 1) -> Fault:
        """Make the next `count` calls of `path` fail (errcode JSON, an HTML page, a delay
        or a dropped connection); count=0 keeps failing until reset()."""
        if not path.startswith("/"):
            raise ValueError("path must start with /")
        if errcode is None and not html and not drop and not delay:
            raise ValueError("a fault needs errcode, html, drop or delay")
        fault = Fault(path, None if errcode is None else int(errcode), bool(html), int(status),
                      float(delay), bool(drop), max(0, int(count)))
        self.faults.append(fault)
        return fault

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path:
                if fault.count:
                    fault.count -= 1
                    if not fault.count:
                        self.faults.remove(fault)
                return fault
        return None

    # -- followers -----------------------------------------------------------------------

    def add_follower(self, openid: str | None = None, nickname: str = NEW_NICKNAME,
                     headimgurl: str = "", unionid: str | None = None,
                     is_snapshotuser: bool = False, subscribed: bool = True) -> Follower:
        openid = openid or "oSandbox" + secrets.token_hex(10)
        if not OPENID_RE.match(openid):
            raise ValueError("openid must be 1-64 characters of A-Z, a-z, 0-9, _ or -")
        follower = Follower(openid, str(nickname), str(headimgurl or ""), unionid or None,
                            bool(is_snapshotuser), bool(subscribed))
        self.followers[openid] = follower
        return follower

    def follower(self, openid: str | None) -> Follower | None:
        return self.followers.get(openid) if openid else None

    @property
    def default_follower(self) -> Follower:
        return next(iter(self.followers.values()))

    # -- authorization codes and web tokens (§6) -------------------------------------------

    def web_openid(self, follower: Follower) -> str:
        """The follower's openid in the website app: never the official account's (§16.4)."""
        return "oWeb" + follower.openid[len("oSandbox"):] if follower.openid.startswith("oSandbox") else "oWeb" + follower.openid

    def follower_by_web_openid(self, openid: str) -> Follower | None:
        return next((f for f in self.followers.values() if self.web_openid(f) == openid), None)

    def mint_code(self, openid: str | None = None, scope: str = "snsapi_base") -> str:
        """An authorization code for `openid`, as if the follower had just consented."""
        if scope not in ("snsapi_base", "snsapi_userinfo", "snsapi_login"):
            raise ValueError("scope must be snsapi_base, snsapi_userinfo or snsapi_login")
        follower = self.follower(openid) if openid else self.default_follower
        if follower is None:
            raise KeyError(openid)
        self._prune()
        code = secrets.token_hex(16)  # 32 characters, like real codes
        self.codes[code] = Code(follower.openid, scope, self.now(), app="web" if scope == "snsapi_login" else "mp")
        return code

    def issue_web_tokens(self, openid: str, scope: str) -> tuple[Token, Token]:
        now = self.now()
        access = Token(secrets.token_urlsafe(66), "web", now + self.token_ttl, openid, scope)
        refresh = Token(secrets.token_urlsafe(66), "refresh", now + REFRESH_TTL, openid, scope)
        self.tokens[access.value] = access
        self.tokens[refresh.value] = refresh
        return access, refresh

    def refresh_web_token(self, refresh: Token) -> Token:
        access = Token(secrets.token_urlsafe(66), "web", self.now() + self.token_ttl,
                       refresh.openid, refresh.scope)
        self.tokens[access.value] = access
        return access

    # -- global access_token (§8.1, §8.2) --------------------------------------------------

    def issue_global_token(self, kind: str, force: bool = False) -> Token:
        """A /cgi-bin/token ("token") or /cgi-bin/stable_token ("stable") token."""
        now = self.now()
        current = self.current.get(kind)
        if kind == "stable" and current and not force:
            # §8.2 normal mode: the same token while valid, renewed shortly before expiry
            # (the old one then stays valid until it expires).
            window = min(STABLE_RENEW_WINDOW, self.token_ttl / 4)
            if current.expires_at - now > window:
                return current
        elif current:
            # §8.1 each /cgi-bin/token call, §8.2 force_refresh: the previous one is dead.
            # (WeChat keeps the old /cgi-bin/token alive 5 more minutes; not modelled.)
            current.superseded = True
        # Real tokens are long (§8.1: reserve 512 characters); a long one catches truncation.
        token = Token(secrets.token_urlsafe(120), kind, now + self.token_ttl)
        self.tokens[token.value] = token
        self.current[kind] = token
        return token

    def check_global_token(self, value: str | None) -> tuple[int, str]:
        """(0, "ok") or the errcode WeChat gives for this access_token (§7)."""
        if not value:
            return 41001, "access_token missing"
        token = self.tokens.get(value)
        if token is None or token.kind not in ("token", "stable") or token.superseded:
            return 40001, "invalid credential, access_token is invalid or not latest"
        if token.expires_at <= self.now():
            return 42001, "access_token expired"
        return 0, "ok"

    # -- JS-SDK tickets and wx.config (§9, §15) ----------------------------------------------

    def issue_ticket(self, kind: str) -> Token:
        """A /cgi-bin/ticket/getticket ticket of `kind` ("jsapi" or "wx_card"). Each call issues a
        new one and earlier ones stay valid until they expire: the docs say nothing either way
        (§15.2), and this is the rule under which a cache that is shared but late still works."""
        self._prune()
        # Real tickets are 86 characters of [A-Za-z0-9_-] (the §9 test vector).
        ticket = Token(secrets.token_urlsafe(64)[:86], kind, self.now() + self.token_ttl)
        self.tokens[ticket.value] = ticket
        return ticket

    def check_js_config(self, appid: str, url: str, timestamp: str, nonce: str, signature: str) -> str:
        """WeChat's verdict on a wx.config (§15.3): "config:ok" or the errMsg its client reports.

        The signature must be sha1 of string1 (§9) with an unexpired jsapi ticket of this account
        over `url` without its fragment; the page must be on the account's JS safe domain (§15.4),
        here the host of `server_url` (ports allowed: the stand-in runs on loopback ports).
        """
        page = str(url).split("#", 1)[0]
        host = urlsplit(page).hostname
        if self.server_url and host != urlsplit(self.server_url).hostname:
            return "config:invalid url domain"
        if appid != self.appid:
            return "config:invalid signature"
        now, given = self.now(), str(signature).lower().encode("utf-8")
        for token in self.tokens.values():
            if token.kind == "jsapi" and token.expires_at > now:
                string1 = f"jsapi_ticket={token.value}&noncestr={nonce}&timestamp={timestamp}&url={page}"
                if hmac.compare_digest(hashlib.sha1(string1.encode("utf-8")).hexdigest().encode("ascii"), given):
                    return "config:ok"
        return "config:invalid signature"

    def _prune(self) -> None:
        """Forget codes and tokens long past use, so a sandbox left running stays small."""
        horizon = self.now() - 3600
        for code, entry in list(self.codes.items()):
            if entry.issued_at < horizon:
                del self.codes[code]
        for value, token in list(self.tokens.items()):
            if token.expires_at < horizon and self.current.get(token.kind) is not token:
                del self.tokens[value]

    # -- conversations ---------------------------------------------------------------------

    def record(self, openid: str, sender: str, entry: dict) -> dict:
        """Append an entry to a follower's conversation; sender: follower, account, system."""
        entry = {"id": next(self._ids), "from": sender, "at": int(self.now()), **entry}
        self.conversations[openid].append(entry)
        return entry

    def inbox(self, openid: str, since: int = 0) -> list[dict]:
        """The follower's conversation after entry id `since`; customer-service messages
        (§8.4) have "via": "custom"."""
        return [e for e in self.conversations.get(openid, ()) if e["id"] > since]

    def template_send(self, touser: str, client_msg_id) -> tuple[int, bool]:
        """(msgid, delivered now): a client_msg_id seen for this user within 10 minutes gets
        the first msgid and no second message (§13.2)."""
        now = self.now()
        key = (touser, client_msg_id) if client_msg_id else None
        if key is not None:
            seen = self._template_recent.get(key)
            if seen is not None and now - seen[1] < DEDUP_SECONDS:
                return seen[0], False
        msgid = 3_717_005_636_572_528_642 + next(self._ids)  # above 2**53, as WeChat's are
        if key is not None:
            self._template_recent[key] = (msgid, now)
        self.template_deliveries[key or (touser, msgid)] += 1
        return msgid, True

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    async def send_text(self, openid: str, content: str, msg_id: int | None = None) -> dict:
        """Deliver a text message from `openid` to the server's /wx, as WeChat would.

        Pass the msg_id of an earlier delivery to re-send it, as WeChat's retry does (§4.4).
        """
        from .delivery import deliver
        msg_id = msg_id or self.next_msg_id()
        sent = self.record(openid, "follower", {"type": "text", "content": content})
        result = await deliver(self, openid, "text",
                               [("Content", content), ("MsgId", msg_id)])
        result["msg_id"] = msg_id
        self._record_result(openid, result, sent)
        return result

    def create_qr_code(self, scene: str, permanent: bool) -> dict:
        """A parametric code; a permanent scene keeps its code, as WeChat's does (§12.1)."""
        if permanent:
            for code in self.qr_codes.values():
                if code["permanent"] and code["scene"] == scene:
                    return code
        self.calls["qrcode created"] += 1
        code_id = secrets.token_urlsafe(12)
        code = {"id": code_id, "ticket": base64.b64encode(secrets.token_bytes(48)).decode(),
                "scene": scene, "permanent": permanent}
        self.qr_codes[code_id] = code
        return code

    def qr_by_ticket(self, ticket: str) -> dict | None:
        return next((c for c in self.qr_codes.values() if c["ticket"] == ticket), None)

    async def scan_qr_code(self, openid: str, code_id: str) -> dict | None:
        """The follower scans a parametric code: subscribe with qrscene_<scene>, or SCAN (§12.3)."""
        from .delivery import deliver

        code = self.qr_codes.get(code_id)
        follower = self.follower(openid)
        if code is None or follower is None:
            return None
        if follower.subscribed:
            event, key = "SCAN", code["scene"]
        else:
            follower.subscribed = True
            event, key = "subscribe", "qrscene_" + code["scene"]
        sent = self.record(openid, "follower", {"type": "event", "event": event, "key": key})
        result = await deliver(self, openid, "event", [("Event", event), ("EventKey", key), ("Ticket", code["ticket"])])
        self._record_result(openid, result, sent)
        return result

    async def send_event(self, openid: str, event: str, key: str | None = None,
                         create_time: int | None = None) -> dict:
        """Deliver an event (subscribe, unsubscribe, CLICK, VIEW) from `openid` (§4.3)."""
        from .delivery import deliver
        follower = self.follower(openid)
        if follower is not None and event in ("subscribe", "unsubscribe"):
            follower.subscribed = event == "subscribe"
        sent = self.record(openid, "follower",
                           {"type": "event", "event": event, "key": key or ""})
        extra = [("Event", event)]
        if key is not None or event == "subscribe":
            # §4.3: a plain follow carries an empty EventKey in real pushes.
            extra.append(("EventKey", key or ""))
        result = await deliver(self, openid, "event", extra, create_time=create_time)
        if event == "unsubscribe":  # nobody sees a reply to an unfollow
            result["reply"] = None
        self._record_result(openid, result, sent)
        return result

    def _record_result(self, openid: str, result: dict, sent: dict) -> None:
        entries = [sent]
        if result.get("reply"):
            entries.append(self.record(openid, "account", {"via": "reply", **result["reply"]}))
        if result.get("notice"):
            entries.append(self.record(openid, "system", {
                "type": "notice", "content": result["notice"],
                "problem": result.get("problem") or ""}))
        result["entries"] = entries
