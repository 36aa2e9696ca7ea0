"""Web authorization (网页授权): one-time state tokens, the code exchange, users and profile refresh."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time

from server.i18n import T, Text
from server.logtags import short_openid
from server.redirects import safe_target
from server.sealing import Sealer
from server.store import USER_PROFILE_FIELDS
from server.userwrites import new_op_id
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.oauth import STATE_RE, authorize_url, qrconnect_url

WEB_SCOPE = "snsapi_login"  # a flow of the website app (docs/wechat-protocol.md §16)

log = logging.getLogger("wxauth.authorize")

TOKEN_LENGTH = 32          # WeChat allows [a-zA-Z0-9]{1,128} in state (docs/wechat-protocol.md §6.2)
RESULT_WAIT = 6.0          # a duplicate callback waits this long for the first one's result
MAX_TOKENS_IN_COOKIE = 3   # a follower may have a few links open at once
LOGIN_WRITE_TIMEOUT = 2.0  # then the login record waits in memory (server/userwrites.py)


def new_state_token() -> str:
    # 128 random bits as 32 hex digits: inside WeChat's [a-zA-Z0-9]{1,128} for state.
    return secrets.token_hex(TOKEN_LENGTH // 2)


def cookie_tokens(raw: str | None) -> list[str]:
    return [t for t in (raw or "").split(".") if STATE_RE.match(t)]


def add_cookie_token(raw: str | None, token: str) -> str:
    return ".".join((cookie_tokens(raw) + [token])[-MAX_TOKENS_IN_COOKIE:])


@dataclasses.dataclass
class Outcome:
    """What the callback handler does next: one of login, redirect, restart or problem."""

    kind: str
    target: str = "/"
    openid: str | None = None
    scope: str | None = None
    status: int = 200
    title: Text | str = ""  # problem: what the follower reads, in their language (handlers say() it)
    text: Text | str = ""
    retry_url: str | None = None
    flow: dict | None = None  # restart: key, target, scope, retry
    result: str = ""          # the metric's word for how it ended (ok, cancelled, errcode_40029, ...)
    key: str | None = None    # the map entry of the flow, when there was one


# What each WeChat errcode means for the follower (docs/wechat-protocol.md §7) and which status fits.
_CODE_PROBLEMS = {
    40029: (400, T("This sign-in is no longer valid"), T("This sign-in link has expired. Please tap the link again.")),
    40163: (400, T("This sign-in was already used"), T("This sign-in link was already used. Please tap the link again.")),
    42003: (400, T("This sign-in has expired"), T("This sign-in link has expired. Please tap the link again.")),
    41008: (400, T("This sign-in is not valid"), T("The sign-in did not complete. Please tap the link again.")),
    -1: (503, T("WeChat is busy"), T("WeChat is busy right now. Please try again in a moment.")),
    45009: (503, T("WeChat is busy"), T("WeChat is busy right now. Please try again later.")),
}
_CONFIG_ERRCODES = {40013: "WX_APPID is not valid for WeChat", 40125: "WX_APPSECRET is wrong",
                    40001: "WX_APPSECRET is wrong or was reset", 48001: "this account may not use this scope (web authorization needs a verified service account)",
                    40164: "this server's IP is not in the account's IP whitelist",
                    10003: "the account's web authorization domain does not match WX_APP_HOST"}
_UNAVAILABLE = {
    "timeout": (504, T("WeChat took too long"), T("WeChat took too long to answer. Please try again in a moment.")),
    "network": (502, T("WeChat cannot be reached"), T("We could not reach WeChat. Please try again in a moment.")),
    "bad_response": (502, T("WeChat answered wrongly"), T("WeChat gave an answer we could not read. Please try again in a moment.")),
}


def outcome_doc(outcome: Outcome) -> dict:
    """An outcome as MongoDB stores it (for a duplicate callback): its Texts as their fields."""
    doc = dataclasses.asdict(outcome)
    for name in ("title", "text"):
        value = getattr(outcome, name)
        if isinstance(value, Text):
            doc[name] = {"message": value.message, "plural": value.plural, "count": value.count, "values": value.values}
    return doc


def outcome_from_doc(doc: dict) -> Outcome:
    doc = dict(doc)
    for name in ("title", "text"):
        value = doc.get(name)
        if isinstance(value, dict):
            doc[name] = Text(value.get("message", ""), value.get("plural"), value.get("count"), **(value.get("values") or {}))
    return Outcome(**doc)


class AuthService:
    def __init__(self, config, store, wechat, state_map, metrics=None, writes=None, web_wechat=None, funnel=None):
        self.funnel = funnel  # server.funnel.Funnel: how each entry's sign-ins end
        self.config = config
        self.store = store
        self.wechat = wechat
        self.state_map = state_map
        self.sealer = Sealer(config.cookie_secret)
        self.metrics = metrics
        self.writes = writes  # server.userwrites.UserWrites: the login record waits there if MongoDB is down
        self.web_wechat = web_wechat  # the website app's client (WX_WEB_APPID), or None
        self._background: set[asyncio.Task] = set()

    # ---- starting a flow --------------------------------------------------------------------

    async def entry_for(self, key: str):
        """The map entry for `key`: from the cache, or from MongoDB for a brand-new entry."""
        entry = self.state_map.get(key)
        if entry is None and STATE_RE.match(key or ""):
            try:
                from server.statemap import Entry

                doc = await self.store.get_state(key)
                entry = Entry.from_doc(doc) if doc else None
            except Exception:
                entry = None
        return entry

    async def begin(self, key: str | None, target: str, scope: str, retry: int = 0) -> tuple[str, str]:
        """Stores a one-time state token; returns (token, the authorize URL to send the browser to)."""
        token = new_state_token()
        target = self.safe(target)
        await self.store.create_oauth_state(token, key, target, scope, retry)
        if scope == WEB_SCOPE:
            # A PC browser and a website app: WeChat's QR sign-in page, bound like any flow.
            url = qrconnect_url(self.config.open_base, self.config.web_appid, self.config.web_redirect_uri, token)
        else:
            url = authorize_url(self.config.open_base, self.config.appid, self.config.redirect_uri, scope, token)
        return token, url

    def safe(self, target: str | None) -> str:
        return safe_target(target, self.config.default_page, self.config.allowed_hosts, self.config.app_host)

    def retry_url(self, flow: dict | None) -> str:
        if flow and flow.get("key"):
            return f"/wx/go/{flow['key']}"
        return self.safe(flow.get("target") if flow else None)

    # ---- the callback ------------------------------------------------------------------------

    async def complete(self, code: str | None, state: str | None, cookie: str | None) -> Outcome:
        """What to do with one callback, counted in the funnel of the flow's entry."""
        outcome, flow = await self._complete(code, state, cookie)
        if flow is not None and flow.get("key") and outcome.result != "reused":
            outcome.key = flow["key"]
            if self.funnel is not None:
                self.funnel.count_result(outcome.key, outcome.result)
        return outcome

    async def _complete(self, code: str | None, state: str | None, cookie: str | None) -> tuple[Outcome, dict | None]:
        """A short list of checks, each answering or passing on; returns the outcome and the flow."""
        state = state or ""
        if not STATE_RE.match(state):
            return self._count(Outcome("redirect", target=self.config.default_page), "unknown_state"), None
        tokens = cookie_tokens(cookie)
        if code and state in tokens:
            # The common case, in one round trip: this browser's own flow, first callback.
            flow = await self.store.claim_oauth_code(state, code)
            if flow is not None:
                return await self._exchange_and_finish(state, code, flow), flow
        flow = await self.store.peek_oauth_state(state)
        if flow is None:
            return await self._without_flow(state), None
        return (self._check_code(code, flow)
                or self._check_browser(state, tokens, flow)
                or self._check_unused(code, flow)
                or await self._claim_and_exchange(state, code, flow)), flow

    async def _without_flow(self, state: str) -> Outcome:
        entry = await self.entry_for(state)
        if entry is not None:
            # A hand-made authorize link (state=<key>): its code is not bound to this browser,
            # so it is not exchanged; the flow restarts bound to this browser (login CSRF).
            return self._count(Outcome("redirect", target=f"/wx/go/{entry.key}"), "restarted_plain_key")
        # Unknown or expired: land on the default page, never on a URL from the request (CWE-601).
        return self._count(Outcome("redirect", target=self.config.default_page), "unknown_state")

    def _check_code(self, code: str | None, flow: dict) -> Outcome | None:
        if code:
            return None
        # docs/wechat-protocol.md §6.3: a refusal comes back without a code (when it comes back at all).
        return self._problem("cancelled", 200, T("You cancelled the sign-in"),
                             T("You cancelled the sign-in. Tap the button to try again when you are ready."), flow)

    def _check_browser(self, state: str, tokens: list[str], flow: dict) -> Outcome | None:
        """The state must be one this browser started: that binding is what stops login CSRF."""
        if state in tokens:
            return None
        if tokens:
            log.warning("callback state does not match this browser's flows: code discarded")
            return self._problem("state_mismatch", 403, T("This sign-in link is not valid"),
                                 T("This sign-in was not started in this browser. Tap the link again from WeChat."), flow)
        if not self.config.strict_state:
            return None  # WX_STRICT_STATE=0: some in-app browsers lose cookies; a known risk
        if flow.get("retry", 0) >= 1:
            return self._problem("cookies_missing", 400, T("Cookies are needed"),
                                 T("Sign-in needs cookies. Please allow cookies for this site (or open the link in WeChat) "
                                   "and try again."), flow)
        return self._count(Outcome("restart", flow={**flow, "retry": flow.get("retry", 0) + 1}), "restarted_no_cookie")

    def _check_unused(self, code: str, flow: dict) -> Outcome | None:
        if flow.get("code") in (None, code):
            return None
        log.warning("state token reused with a different code: code discarded")
        return self._problem("state_reused", 400, T("This sign-in link was already used"),
                             T("This sign-in link was already used. Tap the link again from WeChat."), flow)

    async def _claim_and_exchange(self, state: str, code: str, flow: dict) -> Outcome:
        if flow.get("code") == code or await self.store.claim_oauth_code(state, code) is None:
            # The same code again: Android's double redirect, or a reload. Reuse the first result
            # instead of asking WeChat again, which would answer 40163 (code been used).
            return await self._reuse(state, flow)
        return await self._exchange_and_finish(state, code, flow)

    def _problem(self, result: str, status: int, title: Text, text: Text, flow: dict | None) -> Outcome:
        """An error page; with a flow it offers to start that flow again, without one it does not."""
        retry_url = self.retry_url(flow) if flow is not None else None
        return self._count(Outcome("problem", status=status, title=title, text=text, retry_url=retry_url), result)

    async def _exchange_and_finish(self, state: str, code: str, flow: dict) -> Outcome:
        outcome = await self._exchange(code, flow)
        # The result is for a duplicate callback, which polls for it: the follower need not wait.
        task = asyncio.get_running_loop().create_task(self._finish(state, outcome))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return outcome

    async def _finish(self, state: str, outcome: Outcome) -> None:
        try:
            await self.store.finish_oauth_state(state, outcome_doc(outcome))
        except Exception as exc:
            log.warning("could not store the result of a callback: %s", type(exc).__name__)

    async def _reuse(self, state: str, flow: dict) -> Outcome:
        deadline = time.monotonic() + RESULT_WAIT
        delay = 0.02
        while time.monotonic() < deadline:
            doc = await self.store.peek_oauth_state(state, include_expired=True)
            result = (doc or {}).get("result")
            if result:
                return self._count(outcome_from_doc(result), "reused")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        return self._problem("reuse_timeout", 504, T("The sign-in did not finish"),
                             T("The sign-in is taking too long. Please tap the link again."), flow)

    async def _exchange(self, code: str, flow: dict) -> Outcome:
        if flow.get("scope") == WEB_SCOPE:
            return await self._exchange_web(code, flow)
        try:
            grant = await self.wechat.exchange_code(code)
        except (WeChatError, WeChatUnavailable) as exc:
            return self._failure(exc, flow)
        openid = grant.get("openid")
        if not isinstance(openid, str) or not openid:
            log.error("code exchange answered without an openid")
            return self._problem("bad_response", *_UNAVAILABLE["bad_response"], flow)
        if grant.get("is_snapshotuser") == 1:
            # Snapshot-page users are virtual: their data must not be stored (docs/wechat-protocol.md §6.2).
            return self._problem("snapshot_user", 200, T("Please use the full service"),
                                 T("This is a preview page. Tap “Use the full service” at the bottom of the screen to "
                                   "continue."), None)
        scope = flow.get("scope") or "snsapi_base"
        profile = None
        if "snsapi_userinfo" in str(grant.get("scope", scope)) and grant.get("access_token"):
            try:
                profile = await self.wechat.userinfo(grant["access_token"], openid)
            except (WeChatError, WeChatUnavailable) as exc:
                # The login itself worked; the profile can be fetched again later.
                log.warning("userinfo for %s failed (%s); signing in without a profile", short_openid(openid), exc)
        unionid = (profile or {}).get("unionid") or grant.get("unionid")
        login = (openid, scope, unionid, profile, self._seal_grant(grant), new_op_id())
        try:
            await asyncio.wait_for(self.store.record_login(*login), LOGIN_WRITE_TIMEOUT)
        except Exception as exc:
            # WeChat has vouched for the follower; MongoDB is only late. The record is kept and
            # written once MongoDB answers (the op id makes a second attempt harmless).
            if self.writes is None or not self.writes.submit("sign-in", openid, self.store.record_login, *login):
                log.error("could not record the login of %s: %s", short_openid(openid), type(exc).__name__)
                return self._problem("store_error", 503, T("The service is busy"),
                                     T("We could not finish signing you in. Please try again in a moment."), flow)
            log.warning("login of %s kept in memory until MongoDB answers (%s)", short_openid(openid), type(exc).__name__)
        log.info("signed in %s (%s)", short_openid(openid), scope)
        return self._count(Outcome("login", target=self.safe(flow.get("target")), openid=openid, scope=scope), "ok")

    async def _exchange_web(self, code: str, flow: dict) -> Outcome:
        """The website app's code (§16.4): its own openid, linked to the follower by unionid."""
        if self.web_wechat is None:
            return self._problem("web_app_off", 400, T("This way of signing in is turned off"),
                                 T("This sign-in is no longer offered. Please start again."), None)
        try:
            grant = await self.web_wechat.exchange_code(code)
            web_openid = grant.get("openid")
            if not isinstance(web_openid, str) or not web_openid:
                log.error("website code exchange answered without an openid")
                return self._problem("bad_response", *_UNAVAILABLE["bad_response"], flow)
            profile = None
            if grant.get("access_token"):
                try:
                    profile = await self.web_wechat.userinfo(grant["access_token"], web_openid)
                except (WeChatError, WeChatUnavailable) as exc:
                    log.warning("website userinfo failed (%s); signing in without a profile", exc)
        except (WeChatError, WeChatUnavailable) as exc:
            return self._failure(exc, flow)
        unionid = (profile or {}).get("unionid") or grant.get("unionid")
        try:
            openid = await self.store.record_web_login(web_openid, unionid, profile)
        except Exception as exc:
            log.error("could not record the website login of %s: %s", short_openid(web_openid), type(exc).__name__)
            return self._problem("store_error", 503, T("The service is busy"),
                                 T("We could not finish signing you in. Please try again in a moment."), flow)
        linked = "linked to the follower" if openid != web_openid else "no follower record to link"
        log.info("website sign-in %s (%s)", short_openid(openid), linked)
        return self._count(Outcome("login", target=self.safe(flow.get("target")), openid=openid, scope=WEB_SCOPE), "ok_web")

    def _failure(self, exc: Exception, flow: dict) -> Outcome:
        if isinstance(exc, WeChatUnavailable):
            status, title, text = _UNAVAILABLE.get(exc.reason, _UNAVAILABLE["network"])
            log.warning("code exchange failed: %s", exc.reason)
            return self._problem(exc.reason, status, title, text, flow)
        if exc.errcode in _CONFIG_ERRCODES:
            log.error("code exchange refused, errcode %d: %s", exc.errcode, _CONFIG_ERRCODES[exc.errcode])
            return self._problem(f"errcode_{exc.errcode}", 500, T("The official account is not set up correctly"),
                                 T("The official account is not set up correctly. The operators have been told; "
                                   "please try again later."), None)
        status, title, text = _CODE_PROBLEMS.get(exc.errcode, (502, T("WeChat answered wrongly"),
                                                               T("WeChat could not complete the sign-in. Please try again.")))
        log.warning("code exchange refused, errcode %d", exc.errcode)
        return self._problem(f"errcode_{exc.errcode}", status, title, text, flow)

    def _count(self, outcome: Outcome, result: str) -> Outcome:
        if self.metrics:
            self.metrics.authorization(result)
        outcome.result = result
        return outcome

    # ---- web tokens at rest, refresh and validation (docs/wechat-protocol.md §6.5, §6.7) ---------------

    def _seal_grant(self, grant: dict) -> dict:
        return {
            "sealed": self.sealer.seal({k: grant.get(k) for k in ("access_token", "refresh_token")}),
            "access_expires_at": time.time() + float(grant.get("expires_in") or 7200),
            "refresh_expires_at": time.time() + 30 * 86400,
        }

    async def refresh_profile(self, openid: str) -> dict | None:
        """Re-fetches a follower's profile with the stored tokens; None if they must sign in again."""
        user = await self.store.get_user(openid)
        stored = (user or {}).get("web_token") or {}
        tokens = self.sealer.open(stored.get("sealed", "")) if stored else None
        if not tokens:
            return None
        access = tokens.get("access_token")
        # /sns/auth first: a token WeChat has revoked (password change, 42007) is not trusted.
        valid = bool(access) and time.time() < stored.get("access_expires_at", 0) and await self.wechat.check_web_token(access, openid)
        grant = None
        if not valid:
            if time.time() > stored.get("refresh_expires_at", 0) or not tokens.get("refresh_token"):
                return None
            try:
                grant = await self.wechat.refresh_web_token(tokens["refresh_token"])
            except WeChatError as exc:
                log.info("refresh token of %s no longer works (errcode %d)", short_openid(openid), exc.errcode)
                return None
            access = grant.get("access_token")
        profile = await self.wechat.userinfo(access, openid)
        fields = {k: profile[k] for k in USER_PROFILE_FIELDS if k in profile}
        if profile.get("unionid"):
            fields["unionid"] = profile["unionid"]
        if grant:
            fields["web_token"] = {**self._seal_grant({**tokens, **grant}), "refresh_expires_at": stored.get("refresh_expires_at")}
        try:
            await asyncio.wait_for(self.store.set_user_fields(openid, fields), LOGIN_WRITE_TIMEOUT)
        except Exception as exc:
            # The fresh profile is shown now and written once MongoDB answers ($set is idempotent).
            if self.writes is None or not self.writes.submit("profile", openid, self.store.set_user_fields, openid, fields):
                raise
            log.warning("profile of %s kept in memory until MongoDB answers (%s)", short_openid(openid), type(exc).__name__)
            return {**(user or {}), **fields}
        return await self.store.get_user(openid)
