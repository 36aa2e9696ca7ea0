"""AdminHandler: what every /admin page shares (the session, security headers, no caching)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import tornado.web

from handlers.base import BaseHandler
from server.admin_auth import ADMIN_COOKIE, SESSION_SECONDS
from server.redirects import BadTarget, check_target

# Admin pages load only this site's own files, cannot be framed (clickjacking, CWE-1021) and run
# no inline script (XSS, CWE-79): the page's HTML can then never execute what a user typed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
_NEXT_RE = re.compile(r"^/admin(?:/[A-Za-z0-9/_-]*)?(?:\?[A-Za-z0-9=&_%.-]*)?$")


class AdminHandler(BaseHandler):
    """Base of every /admin page: 404 unless WX_ADMIN_PASSWORD is set, the admin session,
    security headers, and no caching of pages that show followers' data."""

    login_required = True
    nav = ""  # which item of the navigation is highlighted

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    @property
    def admin_auth(self):
        return self.services.admin_auth

    @property
    def who(self) -> str:
        """The name written to the audit log and to an entry's "changed by"."""
        return f"admin@{self.request.remote_ip}"

    def check_xsrf_cookie(self) -> None:
        # Tornado checks xsrf before prepare(); a disabled admin must still look absent.
        if not self.admin_auth.enabled:
            raise tornado.web.HTTPError(404)
        super().check_xsrf_cookie()

    def get_current_user(self) -> dict | None:
        return None  # prepare() loads the session (it is in MongoDB, so it takes an await)

    def admin_cookie(self) -> bytes | None:
        # Tornado's own timestamp check is a coarse backstop; AdminAuth enforces the 8 h / idle limits.
        return self.get_signed_cookie(ADMIN_COOKIE, max_age_days=SESSION_SECONDS / 86400 + 1)

    async def prepare(self) -> None:
        if not self.admin_auth.enabled:
            raise tornado.web.HTTPError(404)
        session = self.current_user = await self.admin_auth.load_session(self.admin_cookie())
        if session is None and self.login_required:
            if self.admin_cookie():
                self.clear_wx_cookie(ADMIN_COOKIE)
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/admin/login?" + urlencode({"next": self.request.uri}))
                return
            raise tornado.web.HTTPError(403, reason="登录已过期，请重新登录 / Your admin session has ended. "
                                                    "Please sign in again (your last change was not saved).")
        if session is not None and self.admin_auth.needs_touch(session):
            self.set_wx_cookie(ADMIN_COOKIE, self.admin_auth.touched(session))

    def get_template_namespace(self) -> dict:
        namespace = super().get_template_namespace()
        namespace.update(nav=self.nav, notice=None, problem=None, json_dump=json_dump)
        return namespace

    def see_other(self, url: str) -> None:
        """After a successful POST: the browser GETs the result, so a reload does not re-submit."""
        self.redirect(url, status=303)


def json_dump(value) -> str:
    """A stored document as the audit and edit pages show it."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("_id", "updated_at")}
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def next_url(raw: str | None) -> str:
    """Where to go after signing in: only admin pages of this site (CWE-601)."""
    if raw and _NEXT_RE.match(raw):
        try:
            return check_target(raw)
        except BadTarget:
            pass
    return "/admin/states"
