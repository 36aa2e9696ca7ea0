"""Handler bases of the sandbox: pages, JSON, and the API wrapper that adds latency and faults."""

import asyncio
import json
import logging
import secrets
from urllib.parse import parse_qsl, urlencode

import tornado.locale
import tornado.web

from server import i18n
from server.wechat.browser import is_wechat

from .demo import PHONE_COOKIE
from .state import Follower, Sandbox

log = logging.getLogger("wxauth.sandbox")

FOLLOWER_COOKIE = "wxsandbox_openid"

# Scripts and styles only from our own static files. form-action must allow http(s): Chromium
# applies it to the redirect that follows the consent form, and that goes to the server.
CSP = ("default-src 'self'; img-src 'self' data: http: https:; script-src 'self'; "
       "style-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; "
       "base-uri 'none'")

# errmsg texts as WeChat words them (docs/wechat-protocol.md §7; menu codes 40016-40027 from
# WeChat's global error table). Clients must switch on errcode only.
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40032: "invalid openid list size",
    40008: "invalid message type",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41008: "missing code",
    42001: "access_token expired",
    42002: "refresh_token expired",
    42003: "code expired",
    43004: "require subscribe",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    46003: "menu no exist",
    47001: "data format error",
    48001: "api unauthorized",
}

_HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
             "</body>\r\n</html>\r\n")


class SandboxHandler(tornado.web.RequestHandler):
    """Access to the Sandbox, safe headers, JSON in and out, the browser's follower."""

    @property
    def sandbox(self) -> Sandbox:
        return self.settings["sandbox"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")

    # ---- language: as WeChat shows its screens in the phone's language, and as the main app
    # picks it (handlers/base.py): ?lang= (remembered in a cookie), then Accept-Language, then Chinese.

    def get_user_locale(self) -> tornado.locale.Locale | None:
        chosen, remember = i18n.user_choice(self.get_query_argument(i18n.LANG_ARG, None),
                                            self.get_cookie(i18n.LANG_COOKIE))
        if remember:
            self.set_cookie(i18n.LANG_COOKIE, chosen, httponly=True, samesite="Lax",
                            expires_days=i18n.LANG_DAYS)
        return tornado.locale.get(chosen) if chosen else None

    def get_browser_locale(self, default: str = i18n.DEFAULT) -> tornado.locale.Locale:
        return i18n.browser_locale(self.request.headers.get("Accept-Language"), default)

    def say(self, value) -> str:
        """A Text (or plain data) in the reader's language."""
        return i18n.say(value, self.locale)

    def render(self, template_name: str, **kwargs):
        self.add_header("Vary", "Accept-Language")
        self.add_header("Vary", "Cookie")
        return super().render(template_name, **kwargs)

    def language_links(self) -> list[tuple[str, str, str, bool]]:
        """The chat page's picker: (code, name, this page in that language, is current)."""
        kept = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k != i18n.LANG_ARG]
        return [(code, name, self.request.path + "?" + urlencode(kept + [(i18n.LANG_ARG, code)]),
                 code == self.locale.code) for code, name in i18n.LANGUAGES.items()]

    def get_template_namespace(self) -> dict:
        namespace = super().get_template_namespace()
        namespace["say"] = self.say
        namespace["language_links"] = self.language_links
        return namespace

    def rendered(self, obj):
        """`obj` with every Text in it in the reader's language (the chat page's notices)."""
        if isinstance(obj, i18n.Text):
            return self.say(obj)
        if isinstance(obj, dict):
            return {k: self.rendered(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.rendered(v) for v in obj]
        return obj

    def since_argument(self) -> int:
        """The `since` query argument of the conversation views (0 when absent)."""
        try:
            return int(self.get_query_argument("since", "0") or 0)
        except ValueError:
            raise tornado.web.HTTPError(400, "since must be an integer") from None

    def write_json(self, obj, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.add_header("Vary", "Accept-Language")  # a notice in it reads in the page's language
        self.add_header("Vary", "Cookie")
        self.finish(json.dumps(self.rendered(obj), ensure_ascii=False))

    def json_body(self) -> dict:
        # Requiring the JSON content type keeps other sites' forms out (a cross-origin
        # fetch with it needs a CORS preflight, which this app grants only on /js/verify,
        # and only to the server's origin: server/sandbox/jssdk.py).
        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            raise tornado.web.HTTPError(415, "send Content-Type: application/json")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "the body must be a JSON object")
        return body

    def in_wechat(self) -> bool:
        """WeChat's browser, or the chat page's (server/sandbox/demo.py PHONE_COOKIE)."""
        return is_wechat(self.request.headers.get("User-Agent")) or self.get_cookie(PHONE_COOKIE) == "1"

    def current_follower(self) -> Follower:
        """The follower this browser acts as: the cookie's, else the first one."""
        return (self.sandbox.follower(self.get_cookie(FOLLOWER_COOKIE))
                or self.sandbox.default_follower)

    def absolute(self, url: str) -> str:
        """Sandbox-relative avatar paths as absolute URLs on the host the caller used."""
        if url.startswith("/"):
            return f"{self.request.protocol}://{self.request.host}{url}"
        return url

    def log_exception(self, typ, value, tb) -> None:
        # Tornado's own version prints the request with its query string (secrets, codes).
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                log.warning("%d %s %s: %s", value.status_code, self.request.method,
                            self.request.path, value.log_message)
        else:
            log.error("uncaught exception %s %s", self.request.method, self.request.path,
                      exc_info=(typ, value, tb))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, tornado.web.HTTPError) else None
        self.write_json({"error": message or self._reason}, status_code)


class ApiHandler(SandboxHandler):
    """A WeChat API endpoint: counted, delayed by `latency`, and open to injected faults."""

    content_type = "application/json; encoding=utf-8"  # what api.weixin.qq.com sends

    _started = False

    async def prepare(self) -> None:
        path = self.request.path
        self.sandbox.calls[path] += 1
        self.sandbox.request_started()
        self._started = True
        fault = self.sandbox.take_fault(path)
        delay = self.sandbox.latency + (fault.delay if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            return
        if fault.drop:
            # The connection dies before any response: what a reset looks like to a client.
            self.set_status(444, "No Response")  # nginx's code, for the access log
            self.request.connection.close()
            raise tornado.web.Finish()
        if fault.html:
            self.set_status(fault.status)
            self.set_header("Content-Type", "text/html")
            self.finish(_HTML_502)
        elif fault.errcode is not None:
            self.wechat_error(fault.errcode)

    def on_finish(self) -> None:
        if self._started:
            self._started = False
            self.sandbox.request_finished()

    def answer(self, obj: dict) -> None:
        self.set_header("Content-Type", self.content_type)
        self.finish(json.dumps(obj, ensure_ascii=False))

    def wechat_error(self, errcode: int, errmsg: str | None = None) -> None:
        # Real errmsg texts end with a request id; clients must not match on errmsg (§7).
        rid = "-".join(secrets.token_hex(4) for _ in range(3))
        text = errmsg or ERRMSG.get(errcode, "error")
        self.answer({"errcode": errcode, "errmsg": f"{text} rid: {rid}"})

    def ok(self) -> None:
        self.answer({"errcode": 0, "errmsg": "ok"})

    def arg(self, name: str) -> str:
        return self.get_query_argument(name, "")

    def write_error(self, status_code: int, **kwargs) -> None:
        if status_code >= 500:
            self.set_header("Content-Type", self.content_type)
            self.finish(json.dumps({"errcode": -1, "errmsg": "system error"}))
        else:
            super().write_error(status_code, **kwargs)
