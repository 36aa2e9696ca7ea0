"""/admin/login, /admin/logout and /admin itself."""

from __future__ import annotations

import math

from handlers.admin.base import AdminHandler, next_url
from server.admin_auth import ADMIN_COOKIE, ADMIN_NAME, MAX_FAILURES
from server.i18n import T, Text

MAX_USERNAME = 64  # longer is no name (names are 1-32 characters); it is still counted as an attempt


class LoginHandler(AdminHandler):
    login_required = False
    edit_role = None

    async def get(self) -> None:
        if self.current_user is not None:
            self.redirect(next_url(self.get_query_argument("next", None)))
            return
        locked = await self.admin_auth.locked_for(self.request.remote_ip)
        self.render_login(locked_for=locked, signed_out=self.get_query_argument("out", None) is not None)

    async def post(self) -> None:
        # An empty name is the bootstrap owner's, as before names existed.
        username = self.get_body_argument("username", "")[:MAX_USERNAME].strip().lower() or ADMIN_NAME
        result = await self.admin_auth.login(self.request.remote_ip, self.get_body_argument("password", "", strip=False),
                                             username)
        if result.ok:
            self.set_wx_cookie(ADMIN_COOKIE, await self.admin_auth.issue_session(result.name))
            self.see_other(next_url(self.get_body_argument("next", None)))
            return
        if result.locked_for > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(result.locked_for)))
            self.render_login(locked_for=result.locked_for)
            return
        self.set_status(403)
        self.render_login(username=username, error=T("Wrong password or name. %(n)s more attempts before sign-in is "
                                                     "locked for a minute.", n=result.attempts_left))

    def render_login(self, error: Text | None = None, locked_for: float = 0.0, signed_out: bool = False,
                     username: str = "") -> None:
        if locked_for > 0:
            seconds = math.ceil(locked_for)
            error = T("Too many failed sign-ins from your address (%(failures)s in a row): sign-in is locked for "
                      "%(seconds)s more seconds.", failures=MAX_FAILURES, seconds=seconds)
        self.render("admin/login.html", error=error, locked=locked_for > 0, signed_out=signed_out,
                    next_url=next_url(self.get_argument("next", None)), username=username)


class LogoutHandler(AdminHandler):
    login_required = False
    edit_role = None

    async def post(self) -> None:
        # Ends the session in MongoDB: every copy of the cookie stops working, not just this one.
        await self.admin_auth.end_session(self.admin_cookie())
        self.clear_wx_cookie(ADMIN_COOKIE)
        self.see_other("/admin/login?out=1")


class HomeHandler(AdminHandler):
    def get(self) -> None:
        self.redirect("/admin/states")


default_handlers = [
    (r"/admin/?", HomeHandler),
    (r"/admin/login", LoginHandler),
    (r"/admin/logout", LogoutHandler),
]
