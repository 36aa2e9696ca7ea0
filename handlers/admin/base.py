"""AdminHandler: what every /admin page shares (the session, the role check, security headers, no caching)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import tornado.web

from handlers.base import BaseHandler, PageError
from server.admin_auth import ADMIN_COOKIE, SESSION_SECONDS
from server.i18n import T, Text
from server.redirects import BadTarget, check_target
from server.roles import NEEDS, allows
from server.roles import label as role_label

# Admin pages load only this site's own files, cannot be framed (clickjacking, CWE-1021) and run
# no inline script (XSS, CWE-79): the page's HTML can then never execute what a user typed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def read_only(role: str) -> Text:
    """Why a role that may only look was refused a change."""
    return T("Your role (%(role)s) can look at everything here but not change it: nothing was changed. "
             "Ask an owner for the editor role if you need it.", role=role_label(role))


def not_yours(role: str) -> Text:
    """Why a page for owners was refused."""
    return T("Only an owner can open this page (your role is %(role)s).", role=role_label(role))


_NEXT_RE = re.compile(r"^/admin(?:/[A-Za-z0-9/_-]*)?(?:\?[A-Za-z0-9=&_%.-]*)?$")


class AdminHandler(BaseHandler):
    """Base of every /admin page: 404 while admin does not exist, the admin session, the role
    check, security headers, and no caching of pages that show followers' data.

    The role check is here and nowhere else: `view_role` is the least role that may GET the
    page, `edit_role` the least that may use any other method (None: anyone signed in, for
    what only concerns the person themselves: signing out, their own password and WeChat).
    Every handler that changes something is an editor's unless it says otherwise."""

    login_required = True
    view_role: str | None = "viewer"
    edit_role: str | None = "editor"
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
        """The name written to the audit log and to an entry's "changed by": the admin, @ their address."""
        name = self.current_user["name"] if self.current_user else "anonymous"
        return f"{name}@{self.request.remote_ip}"

    def check_xsrf_cookie(self) -> None:
        # Tornado checks xsrf before prepare(), but whether admin exists takes a query: with no
        # admin, even a POST without a token must be a 404. prepare() checks it right after.
        pass

    def get_current_user(self) -> dict | None:
        return None  # prepare() loads the session (it is in MongoDB, so it takes an await)

    def admin_cookie(self) -> bytes | None:
        # Tornado's own timestamp check is a coarse backstop; AdminAuth enforces the 8 h / idle limits.
        return self.get_signed_cookie(ADMIN_COOKIE, max_age_days=SESSION_SECONDS / 86400 + 1)

    async def prepare(self) -> None:
        if not await self.admin_auth.enabled():
            raise tornado.web.HTTPError(404)
        reading = self.request.method in ("GET", "HEAD", "OPTIONS")
        if not reading:
            super().check_xsrf_cookie()
        session = self.current_user = await self.admin_auth.load_session(self.admin_cookie())
        if session is None and self.login_required:
            if self.admin_cookie():
                self.clear_wx_cookie(ADMIN_COOKIE)
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/admin/login?" + urlencode({"next": self.request.uri}))
                return
            raise PageError(403, T("Your admin session has ended. Please sign in again (your last change was not saved)."))
        if session is None:
            return
        needed = self.view_role if reading else self.edit_role
        if not allows(session["role"], needed):
            raise PageError(403, (not_yours if reading else read_only)(session["role"]))
        if self.admin_auth.needs_touch(session):
            self.set_wx_cookie(ADMIN_COOKIE, self.admin_auth.touched(session))

    def can(self, what: str) -> bool:
        """For templates: may the signed-in admin "view", "edit" or "manage" (admins)?"""
        return self.current_user is not None and allows(self.current_user["role"], NEEDS[what])

    def get_template_namespace(self) -> dict:
        namespace = super().get_template_namespace()
        namespace.update(nav=self.nav, notice=None, problem=None, json_dump=json_dump, can=self.can,
                         role_name=role_label)
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
