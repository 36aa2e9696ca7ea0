"""/wx/go/<key>, /wx/page/wxauthor and the example business pages under /wx/page/."""

from __future__ import annotations

import functools
import logging
import re

import tornado.web

from handlers.base import BaseHandler
from handlers.flow import AuthFlowMixin
from server.logtags import short_openid
from server.statekey import KEY_PATTERN
from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.pages")

class WxPageHandler(AuthFlowMixin, BaseHandler):
    """Base class for business pages under /wx/page/: use it with @wx_login_required."""


def wx_login_required(scope: str = "snsapi_base"):
    """Decorator for business-page handlers: a visitor without a session (or with a session of a
    narrower scope than the page needs) goes through authorization and comes back to this URL."""

    def decorate(method):
        @functools.wraps(method)
        async def wrapper(self, *args, **kwargs):
            user = self.current_user
            # A website-app sign-in (snsapi_login) carries the profile too (docs/wechat-protocol.md §16.4).
            if user is None or (scope == "snsapi_userinfo" and user.get("scope") not in ("snsapi_userinfo", "snsapi_login")):
                if self.request.method not in ("GET", "HEAD"):
                    raise tornado.web.HTTPError(403, reason="Your session has ended. Please open the page again.")
                await self.enter_flow(None, self.request.path, self.request.uri, scope)
                return None
            result = method(self, *args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result

        return wrapper

    return decorate


class GoHandler(AuthFlowMixin, BaseHandler):
    """The link a follower taps in a reply or a menu: starts authorization for one map entry."""

    async def get(self, key: str) -> None:
        entry = await self.services.auth.entry_for(key)
        if entry is None:
            self.render_problem(404, "链接已失效", "This link is no longer valid. Please use the latest menu or message.",
                                retry_url=self.config.default_page)
            return
        await self.enter_flow(entry.key, entry.title, entry.page, entry.scope)


class WxAuthorHandler(AuthFlowMixin, BaseHandler):
    """WeChat's redirect_uri: exchanges the code, records the user and goes on to the target page."""

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        outcome = await self.services.auth.complete(
            self.get_query_argument("code", None),
            self.get_query_argument("state", None),
            self._state_cookie(),
        )
        if outcome.kind == "login":
            self.start_session(outcome.openid, outcome.scope)
            self.redirect(outcome.target)
        elif outcome.kind == "redirect":
            self.redirect(outcome.target)
        elif outcome.kind == "restart":
            flow = outcome.flow
            await self.start_flow(flow.get("key"), flow.get("target"), flow.get("scope"), flow.get("retry", 1))
        else:
            self.render_problem(outcome.status, outcome.title, outcome.text, outcome.retry_url)


class WxLoginHandler(WxAuthorHandler):
    """The website app's redirect_uri (WX_WEB_APPID): the same checks, the website's code (§16.4)."""


class HomeHandler(BaseHandler):
    def get(self) -> None:
        self.render("home.html")


class MeHandler(WxPageHandler):
    """Example business page: the follower's own record."""

    @wx_login_required(scope="snsapi_userinfo")
    async def get(self) -> None:
        user = await self.store.get_user(self.current_user["openid"])
        if user is None:  # the record was deleted: sign in again
            self.clear_wx_cookie("wx_session")
            await self.start_flow(None, self.request.uri, "snsapi_userinfo")
            return
        self.render("me.html", user=user, refreshed=self.get_query_argument("refreshed", None))

    @wx_login_required(scope="snsapi_userinfo")
    async def post(self) -> None:
        """Refreshes the profile from WeChat with the stored (sealed) tokens."""
        openid = self.current_user["openid"]
        try:
            user = await self.services.auth.refresh_profile(openid)
        except (WeChatError, WeChatUnavailable) as exc:
            log.warning("profile refresh for %s failed: %s", short_openid(openid), exc)
            self.render_problem(502, "刷新失败", "WeChat did not answer. Please try again in a moment.", retry_url="/wx/page/me")
            return
        if user is None:
            # The stored tokens are no longer valid: a fresh authorization gets a fresh profile.
            self.clear_wx_cookie("wx_session")
            await self.start_flow(None, "/wx/page/me", "snsapi_userinfo")
            return
        self.redirect("/wx/page/me?refreshed=1")


# A mainland mobile number, or a student number of 4-20 letters/digits (as schools issue them).
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
STUDENT_RE = re.compile(r"^[A-Za-z0-9]{4,20}$")


class BindHandler(WxPageHandler):
    """Example business page: binds a phone or student number to the openid (the classic tutorial's form)."""

    @wx_login_required()
    async def get(self) -> None:
        user = await self.store.get_user(self.current_user["openid"]) or {}
        self.render("bind.html", user=user, errors={}, values={}, saved=self.get_query_argument("saved", None))

    @wx_login_required()
    async def post(self) -> None:
        openid = self.current_user["openid"]
        values = {"phone": self.get_body_argument("phone", "").strip(),
                  "student_no": self.get_body_argument("student_no", "").strip()}
        errors = {}
        if values["phone"] and not PHONE_RE.match(values["phone"]):
            errors["phone"] = "请输入 11 位手机号 / Enter an 11-digit mobile number."
        if values["student_no"] and not STUDENT_RE.match(values["student_no"]):
            errors["student_no"] = "学号为 4-20 位字母或数字 / 4-20 letters or digits."
        if not values["phone"] and not values["student_no"]:
            errors["phone"] = "请至少填写一项 / Fill in at least one."
        if errors:
            user = await self.store.get_user(openid) or {}
            self.set_status(400)
            self.render("bind.html", user=user, errors=errors, values=values, saved=None)
            return
        fields = {k: v for k, v in values.items() if v}
        if not await self.store.set_user_fields(openid, fields):
            raise tornado.web.HTTPError(404, reason="Your record was not found. Please open the page from WeChat again.")
        self.redirect("/wx/page/bind?saved=1")


default_handlers = [
    (r"/", HomeHandler),
    (r"/wx/page/home", HomeHandler),
    (rf"/wx/go/({KEY_PATTERN})", GoHandler),
    (r"/wx/page/wxauthor", WxAuthorHandler),
    (r"/wx/page/wxlogin", WxLoginHandler),
    (r"/wx/page/me", MeHandler),
    (r"/wx/page/bind", BindHandler),
]
