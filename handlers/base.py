"""BaseHandler: services as read-only properties, the follower session, cookies and error pages."""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit

import tornado.locale
import tornado.web

from server import i18n
from server.i18n import T, Text
from server.metrics import route_label
from server.sandbox.demo import PHONE_COOKIE
from server.wechat.browser import is_wechat
from server.proxies import apply_forwarded
from wxconfig import JSSDK_SCRIPT

log = logging.getLogger("wxauth.web")
access_log = logging.getLogger("wxauth.access")

# Our pages load nothing from elsewhere but avatars (WeChat's image host); a business page that
# needs more overrides set_default_headers. form-action names WeChat's authorize page: a form
# post may end in a new authorization. Built once per app (server/app.py).
PAGE_CSP = ("default-src 'self'; img-src 'self' https: http: data:; script-src 'self'{scripts}; style-src 'self'; "
            "{connect}form-action 'self' {open_base}; frame-ancestors 'none'; base-uri 'none'")


def page_csp(config, share: bool = False) -> str:
    """The pages' CSP; with `share`, a share page's (WxPageHandler.share_card): it may also run the
    JS-SDK from its one origin (config.jssdk_script), and no page without a share card may."""
    if not share:
        return PAGE_CSP.format(scripts="", connect="", open_base=config.open_base)
    parts = urlsplit(config.jssdk_script)
    origin = f"{parts.scheme}://{parts.netloc}"
    # WeChat's script talks to the client natively; the stand-in's asks its server to check the
    # signature (server/sandbox/jssdk.py), so only then may the page fetch from that origin.
    connect = "" if config.jssdk_script == JSSDK_SCRIPT else f"connect-src 'self' {origin}; "
    # The script's full URL, not its origin: nothing else on that host may run here.
    return PAGE_CSP.format(scripts=" " + config.jssdk_script, connect=connect, open_base=config.open_base)
HSTS = "max-age=31536000"  # a year, under https only (RFC 6797)
# What our static files are named: anything else (NUL, backslashes, "..", odd bytes) is a 404
# before it reaches the file system, where a NUL made os.stat raise (a 500).
_STATIC_PATH = re.compile(r"\A(?!.*\.\.)[A-Za-z0-9_-][A-Za-z0-9._/-]{0,200}\Z")
CST = datetime.timezone(datetime.timedelta(hours=8), "CST")
SESSION_COOKIE = "wx_session"
SESSION_DAYS = 7

# What a follower reads on an error page: what happened and what to do, never a stack trace.
ERROR_TEXT = {
    400: (T("The request was not understood"), T("Please go back and try again.")),
    403: (T("Access refused"), T("This request was refused.")),
    404: (T("Page not found"), T("This page does not exist.")),
    405: (T("Not supported"), T("This page cannot be used like that.")),
    409: (T("This cannot be done now"), T("Something changed in the meantime. Please reload the page and try again.")),
    413: (T("Request too large"), T("The request was too large.")),
    429: (T("Too many attempts"), T("Please wait a minute and try again.")),
    500: (T("Something went wrong"), T("Something went wrong on our side. Please try again in a moment.")),
    502: (T("WeChat is not available"), T("WeChat did not answer properly. Please try again in a moment.")),
    503: (T("The service is busy"), T("The service is busy. Please try again in a moment.")),
    504: (T("WeChat took too long"), T("WeChat took too long to answer. Please try again in a moment.")),
}
# Query arguments a language link never repeats: WeChat's code is a one-time credential.
_NOT_REPEATED = {"code", i18n.LANG_ARG}


class PageError(tornado.web.HTTPError):
    """An HTTP error whose page tells a person, in their language, what happened (`text`);
    log_message and args stay for operators, in English."""

    def __init__(self, status_code: int, text: Text, log_message: str | None = None, *args):
        super().__init__(status_code, log_message, *args)
        self.text = text


def fmt_time(value) -> str:
    """A stored time for people: datetimes and Unix seconds alike, in UTC+8 (China Standard Time)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    return str(value)


def request_id(request) -> str:
    """A short random id per request, in the X-Request-Id header and the access log line."""
    rid = getattr(request, "_wx_request_id", None)
    if rid is None:
        rid = request._wx_request_id = secrets.token_hex(6)
    return rid


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One access-log line per request, key=value. The query string is never logged: WeChat's
    code and state ride in it (and a code is a credential for 5 minutes)."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    services = handler.settings.get("wx_services")
    if services is not None and services.metrics is not None:
        # The handler class names the route without the cardinality of raw paths.
        services.metrics.request(route_label(type(handler)), handler.request.method, status, seconds)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    # A handler whose path holds a credential (an invitation token) names a redacted path instead.
    path = handler.logged_path if isinstance(handler, BaseHandler) else handler.request.path
    access_log.log(level, "status=%d method=%s path=%s ms=%.1f ip=%s rid=%s", status, handler.request.method,
                   path, 1000.0 * seconds, handler.request.remote_ip,
                   request_id(handler.request))


class Inflight:
    """Counts requests being handled, so a shutdown can wait for them (Tornado closes connections
    without waiting for their handlers)."""

    def __init__(self):
        self.count = 0
        self._idle = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        import asyncio

        while self.count > 0:
            self._idle = asyncio.Event()
            await self._idle.wait()


class BaseHandler(tornado.web.RequestHandler):
    def in_wechat(self) -> bool:
        """Inside WeChat's browser, where official-account authorization works (docs/wechat-protocol.md
        §17); in sandbox mode (loopback only) also the stand-in's chat page, the demo's phone."""
        if is_wechat(self.request.headers.get("User-Agent")):
            return True
        return bool(self.config.sandbox) and self.get_cookie(PHONE_COOKIE) == "1"

    def __init__(self, application, request, **kwargs):
        apply_forwarded(request, application.settings["wx_config"].trusted_proxies)
        self._counted = False
        inflight = getattr(application, "wx_inflight", None)
        if inflight is not None:
            inflight.enter()
            self._counted = True
        super().__init__(application, request, **kwargs)

    def on_finish(self) -> None:
        self._uncount()

    def on_connection_close(self) -> None:
        self._uncount()
        super().on_connection_close()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.application.wx_inflight.leave()

    @property
    def config(self):
        return self.settings["wx_config"]

    @property
    def services(self):
        return self.settings["wx_services"]

    @property
    def store(self):
        return self.services.store

    @property
    def state_map(self):
        return self.services.state_map

    # ---- language: ?lang= (remembered in a cookie), then Accept-Language, then Chinese ------------

    def get_user_locale(self) -> tornado.locale.Locale | None:
        chosen, remember = i18n.user_choice(self.get_query_argument(i18n.LANG_ARG, None),
                                            self.get_cookie(i18n.LANG_COOKIE))
        if remember:
            self.set_wx_cookie(i18n.LANG_COOKIE, chosen, max_age=i18n.LANG_DAYS * 86400, signed=False)
        return tornado.locale.get(chosen) if chosen else None  # None: the browser's Accept-Language

    def get_browser_locale(self, default: str = i18n.DEFAULT) -> tornado.locale.Locale:
        # Tornado's own version matches only the exact codes we have (en-GB or a bare "en" fell to
        # the default) and defaults to en_US; ours reads each language by i18n.pick, Chinese last.
        return i18n.browser_locale(self.request.headers.get("Accept-Language"), default)

    def say(self, value) -> str:
        """A Text (or plain data) in the reader's language."""
        return i18n.say(value, self.locale)

    def language_links(self) -> list[tuple[str, str, str, bool]]:
        """The picker: (code, name, this page in that language, is current) for each language; none
        on the answer to a POST, whose address is no page to open again."""
        if self.request.method not in ("GET", "HEAD"):
            return []
        kept = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k not in _NOT_REPEATED]
        return [(code, name, self.request.path + "?" + urlencode(kept + [(i18n.LANG_ARG, code)]),
                 code == self.locale.code) for code, name in i18n.LANGUAGES.items()]

    def render(self, template_name: str, **kwargs):
        # The page's words depend on these; a cache between us and the reader must not mix them.
        self.add_header("Vary", "Accept-Language")
        self.add_header("Vary", "Cookie")
        return super().render(template_name, **kwargs)

    def get_template_namespace(self) -> dict:
        namespace = super().get_template_namespace()
        namespace["fmt_time"] = fmt_time
        namespace["say"] = self.say
        namespace["language_links"] = self.language_links
        namespace["share"] = None  # base.html's share card (WxPageHandler.share_card), off unless a page passes one
        return namespace

    @property
    def request_id(self) -> str:
        return request_id(self.request)

    def set_default_headers(self) -> None:
        common_headers(self)
        self.set_header("X-Request-Id", self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Content-Security-Policy", self.settings["wx_page_csp"])

    # ---- cookies: the one place that sets them (HttpOnly, SameSite=Lax, Secure under https) ----

    def set_wx_cookie(self, name: str, value: str, *, max_age: int | None = None, signed: bool = True) -> None:
        kwargs = dict(httponly=True, samesite="Lax", secure=self.config.https, path="/")
        if max_age is not None:
            kwargs["expires_days"] = max_age / 86400
        if signed:
            self.set_signed_cookie(name, value, **kwargs)
        else:
            self.set_cookie(name, value, **kwargs)

    def clear_wx_cookie(self, name: str) -> None:
        self.clear_cookie(name, path="/")

    # ---- the follower session ------------------------------------------------------------------

    def get_current_user(self) -> dict | None:
        raw = self.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("openid") else None

    def start_session(self, openid: str, scope: str) -> None:
        self.set_wx_cookie(SESSION_COOKIE, json.dumps({"openid": openid, "scope": scope}), max_age=SESSION_DAYS * 86400)

    # ---- errors ----------------------------------------------------------------------------------

    log_path: str | None = None  # set where the path itself holds a credential

    @property
    def logged_path(self) -> str:
        return self.log_path or self.request.path

    def log_exception(self, typ, value, tb) -> None:
        """Tornado's own version prints the full URI (codes and states ride in the query)."""
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                log.warning("%d %s %s: %s rid=%s", value.status_code, self.request.method, self.logged_path,
                            value.log_message % value.args if value.args else value.log_message, self.request_id)
            return
        log.error("uncaught exception in %s %s rid=%s", self.request.method, self.logged_path, self.request_id,
                  exc_info=(typ, value, tb))

    def write_error(self, status_code: int, **kwargs) -> None:
        # A status without words of its own reads as its class does (a 4xx as 400, a 5xx as 500).
        title, text = ERROR_TEXT.get(status_code) or ERROR_TEXT[400 if status_code < 500 else 500]
        exc = kwargs.get("exc_info", (None, None, None))[1]
        # HTTPError's log_message (and Tornado's reason) is for operators; a PageError's text is for people.
        if isinstance(exc, PageError):
            text = exc.text
        self.render("error.html", status=status_code, title=self.say(title), text=self.say(text), retry_url=None)

    def render_problem(self, status: int, title: Text, text: Text, retry_url: str | None = None) -> None:
        """A page that tells a follower what happened and what to do next."""
        self.set_status(status)
        self.render("error.html", status=status, title=self.say(title), text=self.say(text), retry_url=retry_url)


def common_headers(handler: tornado.web.RequestHandler) -> None:
    """Headers every answer carries, pages and static files alike."""
    # No version in Server: it only helps someone match the server to a known bug.
    handler.set_header("Server", "wxauth")
    if handler.settings["wx_config"].https:
        handler.set_header("Strict-Transport-Security", HSTS)


class StaticHandler(tornado.web.StaticFileHandler):
    """/static/: only names our files can have; anything else is a 404, never a 500."""

    def set_default_headers(self) -> None:
        common_headers(self)
        self.set_header("X-Content-Type-Options", "nosniff")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        relative = self.path or ""
        if not _STATIC_PATH.match(relative):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if "\x00" in path:
            raise tornado.web.HTTPError(404)
        return super().get_absolute_path(root, path)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {http.client.responses.get(status_code, 'Error')}")


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)
