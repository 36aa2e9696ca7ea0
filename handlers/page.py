"""/wx/go/<key>, /wx/page/wxauthor and the example business pages under /wx/page/."""

from __future__ import annotations

import functools
import logging
import re
from urllib.parse import urlencode

from handlers.base import BaseHandler, PageError
from handlers.flow import AuthFlowMixin
from server.i18n import T
from server.links import entry_url
from server.logtags import short_openid
from server.redirects import BadTarget, check_target
from server.sandbox.demo import DEMO_GRADES
from server.statekey import KEY_PATTERN
from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.pages")


class WxPageHandler(AuthFlowMixin, BaseHandler):
    """Base class for business pages under /wx/page/: use it with @wx_login_required.

    `share_entry` names the map entry the page belongs to; `await self.share_card()` then gives
    what base.html needs to set WeChat's share card to that entry's title and /wx/go/<key> link.
    Named by the page, not looked up by its path: several entries may point at one page.
    """

    share_entry: str | None = None

    async def share_card(self) -> dict | None:
        """wx.config for this page's URL plus the share data (templates/_share.html), or None.

        None (a page without a share card, never an error page) outside WeChat, for a page without
        an entry or whose entry is gone, and when WeChat hands out no ticket. Snapshot-page users
        (朋友圈快照页) never get here: they get no session (server/authorize.py,
        docs/wechat-protocol.md §6.2), so they get no JS-SDK either.
        """
        if not self.share_entry or self.current_user is None or not self.in_wechat():
            return None
        entry = await self.services.auth.entry_for(self.share_entry)
        if entry is None:
            return None
        # The URL the browser shows (docs/wechat-protocol.md §9: location.href without '#'); WX_APP_HOST is the public origin,
        # whatever host and scheme the proxy used to reach us; browsers never send the fragment.
        try:
            config = await self.services.tickets.js_config(self.config.app_host + self.request.uri)
        except (WeChatError, WeChatUnavailable) as exc:
            log.warning("no share card on %s: %s", self.request.path, exc)
            return None
        # Only a page that runs the JS-SDK may load it (handlers/base.py page_csp).
        self.set_header("Content-Security-Policy", self.settings["wx_share_csp"])
        return dict(config, title=entry.title, link=entry_url(self.config.app_host, entry.key),
                    script=self.config.jssdk_script)


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
                    raise PageError(403, T("Your session has ended. Please open the page again."))
                await self.enter_flow(None, self.request.path, self.request.uri, scope)
                return None
            if self.request.method == "GET":
                self.count_landing()  # before the page writes (it may set and clear cookies no more after)
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
            self.render_problem(404, T("This link is no longer valid"),
                                T("This link is no longer valid. Please use the latest menu or message."),
                                retry_url=self.config.default_page)
            return
        if self.services.funnel is not None:
            self.services.funnel.count(entry.key, "tap")
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
            self.head_for_page(outcome.key, outcome.target)
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

    share_entry = "me"  # the demo's entry for this page (server/sandbox/demo.py)

    @wx_login_required(scope="snsapi_userinfo")
    async def get(self) -> None:
        user = await self.store.get_user(self.current_user["openid"])
        if user is None:  # the record was deleted: sign in again
            self.clear_wx_cookie("wx_session")
            await self.start_flow(None, self.request.uri, "snsapi_userinfo")
            return
        self.render("me.html", user=user, refreshed=self.get_query_argument("refreshed", None),
                    share=await self.share_card())

    @wx_login_required(scope="snsapi_userinfo")
    async def post(self) -> None:
        """Refreshes the profile from WeChat with the stored (sealed) tokens."""
        openid = self.current_user["openid"]
        try:
            user = await self.services.auth.refresh_profile(openid)
        except (WeChatError, WeChatUnavailable) as exc:
            log.warning("profile refresh for %s failed: %s", short_openid(openid), exc)
            self.render_problem(502, T("The profile was not refreshed"), T("WeChat did not answer. Please try again in a moment."),
                                retry_url="/wx/page/me")
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
# Path segments of letters, digits, "-" and "_" (no "..", "//" or "\\"), and a plain query.
_BACK_RE = re.compile(r"^/wx/page/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*(?:\?[A-Za-z0-9=&_%.-]*)?$")
MAX_GRADE_ROWS = 200  # a student's whole record fits; a page never reads an unbounded list


def back_to(raw: str | None) -> str | None:
    """A business page to return to after binding: only this site's /wx/page/ paths (CWE-601)."""
    if raw and _BACK_RE.match(raw) and not raw.startswith("/wx/page/bind"):
        try:
            return check_target(raw)
        except BadTarget:
            return None
    return None


class BindHandler(WxPageHandler):
    """Example business page: binds a phone or student number to the openid (the classic tutorial's form).

    `?next=/wx/page/...` brings the follower back to the page that needed the number.
    """

    @wx_login_required()
    async def get(self) -> None:
        user = await self.store.get_user(self.current_user["openid"]) or {}
        self.render_bind(user, {}, {}, saved=self.get_query_argument("saved", None))

    def render_bind(self, user: dict, errors: dict, values: dict, saved=None) -> None:
        # The sandbox's grades page has data only for its demo students: name them there.
        demo = sorted(DEMO_GRADES) if self.config.sandbox else []
        self.render("bind.html", user=user, errors=errors, values=values, saved=saved,
                    next_url=back_to(self.get_argument("next", None)), demo_students=demo)

    @wx_login_required()
    async def post(self) -> None:
        openid = self.current_user["openid"]
        values = {"phone": self.get_body_argument("phone", "").strip(),
                  "student_no": self.get_body_argument("student_no", "").strip()}
        errors = {}
        if values["phone"] and not PHONE_RE.match(values["phone"]):
            errors["phone"] = T("Enter an 11-digit mobile number.")
        if values["student_no"] and not STUDENT_RE.match(values["student_no"]):
            errors["student_no"] = T("A student number is 4-20 letters or digits.")
        if not values["phone"] and not values["student_no"]:
            errors["phone"] = T("Fill in at least one.")
        if errors:
            user = await self.store.get_user(openid) or {}
            self.set_status(400)
            self.render_bind(user, errors, values)
            return
        fields = {k: v for k, v in values.items() if v}
        if not await self.store.set_user_fields(openid, fields):
            raise PageError(404, T("Your record was not found. Please open the page from WeChat again."))
        self.redirect(back_to(self.get_body_argument("next", None)) or "/wx/page/bind?saved=1")


class GradesHandler(WxPageHandler):
    """Example business page: the follower's grades, found by the student number they bound.

    Grades are the school's data, in a collection of its own (`grades`: student_no, term,
    course, credit, score); the sandbox seeds it for its demo students.
    """

    share_entry = "score"  # shared, the card opens this page for whoever taps it, signed in as themselves

    @wx_login_required()
    async def get(self) -> None:
        user = await self.store.get_user(self.current_user["openid"]) or {}
        student_no = user.get("student_no")
        if not student_no:
            self.redirect("/wx/page/bind?" + urlencode({"next": "/wx/page/grades"}))
            return
        rows = await self.store.db.grades.find({"student_no": student_no}, {"_id": 0}).sort(
            [("term", -1), ("course", 1)]).to_list(MAX_GRADE_ROWS)
        self.render("grades.html", student_no=student_no, rows=rows, share=await self.share_card())


default_handlers = [
    (r"/", HomeHandler),
    (r"/wx/page/home", HomeHandler),
    (rf"/wx/go/({KEY_PATTERN})", GoHandler),
    (r"/wx/page/wxauthor", WxAuthorHandler),
    (r"/wx/page/wxlogin", WxLoginHandler),
    (r"/wx/page/me", MeHandler),
    (r"/wx/page/bind", BindHandler),
    (r"/wx/page/grades", GradesHandler),
]
