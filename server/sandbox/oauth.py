"""The stand-in for web authorization: the authorize page and the sns/ APIs (protocol §6)."""

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tornado.web

from server.i18n import T, Text
from server.wechat.oauth import SCOPES, STATE_RE

from .base import ApiHandler, SandboxHandler
from .state import CODE_TTL

log = logging.getLogger("wxauth.sandbox")

# §6.2: WeChat matches the authorize URL with a strict regex: these four, in this order,
# then the optional state. WeChat itself appends connect_redirect=1 when it redirects.
_ORDER = ("appid", "redirect_uri", "response_type", "scope")
_OPTIONAL_TAIL = ("state", "forcePopup", "connect_redirect")


class AuthorizeError(Exception):
    """An error the authorize page shows instead of redirecting (§7, browser errors)."""

    def __init__(self, code: int | None, message: Text, detail: Text | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


def check_order(raw_query: str) -> None:
    names = [part.split("=", 1)[0] for part in raw_query.split("&") if part]
    head, tail = tuple(names[:len(_ORDER)]), names[len(_ORDER):]
    in_order = [n for n in _OPTIONAL_TAIL if n in tail]
    if head != _ORDER or tail != in_order:
        raise AuthorizeError(None, T("Bad request parameters"),
                             T("The parameters must be appid, redirect_uri, response_type, scope, "
                               "state, in this order (docs/wechat-protocol.md §6.2)."))


def check_params(sandbox, params: dict) -> None:
    """The checks of the authorize page, each with WeChat's browser error code (§7)."""
    appid = params.get("appid", "")
    if not appid:
        raise AuthorizeError(10012, T("appid is empty"))
    if appid != sandbox.appid:
        raise AuthorizeError(10016, T("This appid cannot use web authorization"),
                             T("The appid is not this sandbox account's AppID."))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise AuthorizeError(10011, T("redirect_uri is empty"))
    parts = urlsplit(redirect_uri)
    # Control characters or spaces would end up in a Location header.
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or any(ord(c) <= 0x20 or c == "\x7f" for c in redirect_uri)):
        raise AuthorizeError(10003, T("Invalid redirect_uri"),
                             T("redirect_uri must be an absolute http(s) URL, fully URL-encoded."))
    if sandbox.callback_domain and parts.hostname != sandbox.callback_domain:
        # §6.1: the authorization callback domain matches by full host name.
        raise AuthorizeError(10003, T("The redirect_uri domain differs from the configured callback domain"))
    if params.get("response_type") != "code":
        raise AuthorizeError(None, T("response_type must be code"))
    scope = params.get("scope", "")
    if not scope:
        raise AuthorizeError(10010, T("scope is empty"))
    if scope not in SCOPES:
        raise AuthorizeError(10005, T("This account has no permission for that scope"))
    state = params.get("state", "")
    if state and not STATE_RE.match(state):
        # §6.2: state is a-zA-Z0-9, at most 128 bytes.
        raise AuthorizeError(None, T("state must be at most 128 of a-z A-Z 0-9"))


def with_query(uri: str, **params: str) -> str:
    """`uri` with params appended to its query (before any fragment)."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


class AuthorizeHandler(SandboxHandler):
    """GET /connect/oauth2/authorize, and POST from its consent page (§6.2, §6.3)."""

    def get(self) -> None:
        self.sandbox.calls[self.request.path] += 1
        try:
            check_order(self.request.query)
            params = {"state": "", **dict(parse_qsl(self.request.query, keep_blank_values=True))}
            check_params(self.sandbox, params)
        except AuthorizeError as exc:
            return self.error_page(exc)
        if not self.in_wechat():
            # §17: official-account authorization exists only inside WeChat; elsewhere WeChat
            # answers 200 with this page and never sends a code.
            return self.render("outside_wechat.html")
        follower = self.current_follower()
        if params["scope"] == "snsapi_base":
            # §6.2: snsapi_base is silent: straight back with a code.
            return self.back_with_code(params, follower.openid)
        self.render("consent.html", sandbox=self.sandbox, follower=follower,
                    avatar=self.absolute(follower.headimgurl),
                    fields=[(name, params.get(name, ""))
                            for name in ("appid", "redirect_uri", "response_type", "scope",
                                         "state")])

    def post(self) -> None:
        params = {name: self.get_body_argument(name, "")
                  for name in ("appid", "redirect_uri", "response_type", "scope", "state")}
        try:
            check_params(self.sandbox, params)
        except AuthorizeError as exc:
            return self.error_page(exc)
        if self.get_body_argument("action", "") == "allow":
            return self.back_with_code(params, self.current_follower().openid)
        # §6.3: the classic documented refusal: back to redirect_uri with state and no code.
        # (Real clients often just close the page; the server must cope with both.)
        self.redirect(with_query(params["redirect_uri"], state=params["state"]))

    def back_with_code(self, params: dict, openid: str) -> None:
        code = self.sandbox.mint_code(openid, params["scope"])
        self.redirect(with_query(params["redirect_uri"], code=code, state=params["state"]))

    def error_page(self, exc: AuthorizeError) -> None:
        log.info("authorize page error %s: %s", exc.code, exc.message)
        self.set_status(400)
        self.render("error.html", code=exc.code, message=exc.message, detail=exc.detail)


class QrconnectHandler(SandboxHandler):
    """GET /connect/qrconnect: the website app's sign-in page on a PC, with WeChat's QR (§16.1)."""

    def get(self) -> None:
        import secrets

        from server.qrimage import qr_svg

        self.sandbox.calls[self.request.path] += 1
        params = dict(parse_qsl(self.request.query, keep_blank_values=True))
        if not self.sandbox.web_appid or params.get("appid") != self.sandbox.web_appid \
                or params.get("scope") != "snsapi_login" or params.get("response_type") != "code" \
                or not params.get("redirect_uri", "").startswith(("http://", "https://")):
            # §16.1: a wrong app, scope or domain gets a page, never a redirect.
            return self.error_page(AuthorizeError(None, T("This link cannot be opened"),
                                                  T("appid must be the website app's, scope snsapi_login.")))
        uuid = secrets.token_urlsafe(12)
        self.sandbox.web_logins[uuid] = {"params": params, "status": "waiting", "redirect": None}
        confirm_url = self.absolute(f"/connect/qrconnect/confirm?uuid={uuid}")
        self.render("qrconnect.html", uuid=uuid, confirm_url=confirm_url, qr=qr_svg(confirm_url))


class QrconnectStatusHandler(SandboxHandler):
    """GET /connect/qrconnect/status?uuid=: the PC page's check; where to go once confirmed."""

    def get(self) -> None:
        login = self.sandbox.web_logins.get(self.get_query_argument("uuid", ""))
        if login is None:
            raise tornado.web.HTTPError(404)
        self.write({"status": login["status"], "redirect": login["redirect"]})


class QrconnectConfirmHandler(SandboxHandler):
    """GET/POST /connect/qrconnect/confirm?uuid=: the phone that scanned allows or refuses (§16.5)."""

    def get(self) -> None:
        login = self.sandbox.web_logins.get(self.get_query_argument("uuid", ""))
        if login is None:
            raise tornado.web.HTTPError(404)
        if not self.in_wechat():
            return self.render("outside_wechat.html")
        self.render("qrconnect_confirm.html", uuid=self.get_query_argument("uuid"), follower=self.current_follower(),
                    login=login, done=None)

    def post(self) -> None:
        uuid = self.get_query_argument("uuid", "")
        login = self.sandbox.web_logins.get(uuid)
        if login is None or login["status"] != "waiting":
            raise tornado.web.HTTPError(409)
        follower = self.current_follower()
        if self.get_body_argument("action", "") == "allow":
            code = self.sandbox.mint_code(follower.openid, "snsapi_login")
            login["status"] = "confirmed"
            login["redirect"] = with_query(login["params"]["redirect_uri"], code=code,
                                           state=login["params"].get("state", ""))
        else:
            login["status"] = "refused"  # §16.5: today no redirect happens on a refusal
        self.render("qrconnect_confirm.html", uuid=uuid, follower=follower, login=login, done=login["status"])


class SnsHandler(ApiHandler):
    content_type = "text/plain"  # sns/ answers JSON labelled text/plain; clients must cope

    def web_token(self, value: str):
        """The web access_token, or None after answering its errcode (§6.6, §6.7, §7)."""
        if not value:
            return self.wechat_error(41001)
        token = self.sandbox.tokens.get(value)
        if token is None or token.kind != "web":
            return self.wechat_error(40001)
        if token.expires_at <= self.sandbox.now():
            return self.wechat_error(42001)
        return token


class AccessTokenHandler(SnsHandler):
    """GET /sns/oauth2/access_token: exchange a code (§6.4)."""

    def get(self) -> None:
        sandbox = self.sandbox
        if self.arg("grant_type") != "authorization_code":
            return self.wechat_error(40002)
        web = bool(sandbox.web_appid) and self.arg("appid") == sandbox.web_appid
        if not web and self.arg("appid") != sandbox.appid:
            return self.wechat_error(40013)
        if self.arg("secret") != (sandbox.web_secret if web else sandbox.secret):
            return self.wechat_error(40125)
        code = self.arg("code")
        if not code:
            return self.wechat_error(41008)
        entry = sandbox.codes.get(code)
        if entry is None:
            return self.wechat_error(40029)
        if entry.used:
            return self.wechat_error(40163)
        if sandbox.now() - entry.issued_at >= CODE_TTL:
            # §6.3: WeChat has answered both 40029 and 42003 for an expired code; the
            # sandbox gives 42003 so tests can tell "expired" from "unknown" (40029).
            return self.wechat_error(42003)
        if (entry.app == "web") != web:
            return self.wechat_error(40029)  # a code is good only for the app it was issued to
        entry.used = True  # §6.3: single use, whatever happens next
        follower = sandbox.follower(entry.openid)
        if follower is None:
            return self.wechat_error(40029)
        if web:
            # §16.4: the website app's own openid; unionid whenever the account has one.
            openid = sandbox.web_openid(follower)
            access, refresh = sandbox.issue_web_tokens(openid, entry.scope)
            answer = {"access_token": access.value, "expires_in": sandbox.token_ttl,
                      "refresh_token": refresh.value, "openid": openid, "scope": entry.scope}
            if follower.unionid:
                answer["unionid"] = follower.unionid
            return self.answer(answer)
        access, refresh = sandbox.issue_web_tokens(follower.openid, entry.scope)
        answer = {"access_token": access.value, "expires_in": sandbox.token_ttl,
                  "refresh_token": refresh.value, "openid": follower.openid,
                  "scope": entry.scope}
        if follower.is_snapshotuser:
            answer["is_snapshotuser"] = 1  # §6.4: present only for snapshot-page users
        if entry.scope == "snsapi_userinfo" and follower.unionid:
            answer["unionid"] = follower.unionid  # §6.4: only with snsapi_userinfo
        self.answer(answer)


class RefreshTokenHandler(SnsHandler):
    """GET /sns/oauth2/refresh_token (§6.5)."""

    def get(self) -> None:
        sandbox = self.sandbox
        if self.arg("appid") != sandbox.appid:
            return self.wechat_error(40013)
        if self.arg("grant_type") != "refresh_token":
            return self.wechat_error(40002)
        refresh = sandbox.tokens.get(self.arg("refresh_token"))
        if refresh is None or refresh.kind != "refresh":
            return self.wechat_error(40030)
        if refresh.expires_at <= sandbox.now():
            return self.wechat_error(42002)
        access = sandbox.refresh_web_token(refresh)
        # §6.5: refreshing does not extend the refresh_token's 30 days.
        self.answer({"access_token": access.value, "expires_in": sandbox.token_ttl,
                     "refresh_token": refresh.value, "openid": refresh.openid,
                     "scope": refresh.scope})


class UserinfoHandler(SnsHandler):
    """GET /sns/userinfo (§6.6)."""

    def get(self) -> None:
        token = self.web_token(self.arg("access_token"))
        if token is None:
            return
        openid = self.arg("openid")
        follower = self.sandbox.follower(openid) or self.sandbox.follower_by_web_openid(openid)
        if follower is None or openid != token.openid:
            return self.wechat_error(40003)
        if token.scope not in ("snsapi_userinfo", "snsapi_login"):
            return self.wechat_error(48001)  # §6.6: a snsapi_base token may not read profiles
        # §6.6 and the 2021 change: sex is 0 and the region strings are empty.
        answer = {"openid": openid, "nickname": follower.nickname, "sex": 0,
                  "province": "", "city": "", "country": "",
                  "headimgurl": self.absolute(follower.headimgurl), "privilege": []}
        if follower.unionid:
            answer["unionid"] = follower.unionid
        self.answer(answer)


class AuthHandler(SnsHandler):
    """GET /sns/auth: is this web access_token valid for this openid (§6.7)."""

    def get(self) -> None:
        token = self.web_token(self.arg("access_token"))
        if token is None:
            return
        if token.openid != self.arg("openid"):
            return self.wechat_error(40003)
        self.ok()


default_handlers = [
    (r"/connect/oauth2/authorize", AuthorizeHandler),
    (r"/connect/qrconnect", QrconnectHandler),
    (r"/connect/qrconnect/status", QrconnectStatusHandler),
    (r"/connect/qrconnect/confirm", QrconnectConfirmHandler),
    (r"/sns/oauth2/access_token", AccessTokenHandler),
    (r"/sns/oauth2/refresh_token", RefreshTokenHandler),
    (r"/sns/userinfo", UserinfoHandler),
    (r"/sns/auth", AuthHandler),
]
