"""/admin/me: the signed-in admin's own account: their role, their password, binding their WeChat."""

from __future__ import annotations

import math

from handlers.admin.base import AdminHandler
from handlers.admin.scan_signin import SCAN_TOKEN, AdminScanMixin
from server.admin_auth import ADMIN_COOKIE, MAX_PASSWORD, MIN_PASSWORD
from server.admins import AdminError
from server.i18n import T, Text
from server.logtags import short_openid

NOTICES = {
    "welcome": T("Welcome: your password is set. Bind your WeChat below to sign in by scanning next time."),
    "bound": T("Your WeChat is bound: you can sign in by scanning from now on."),
    "changed": T("Password changed; your sessions everywhere else have ended."),
    "unbound": T("Your WeChat is no longer bound: sign in with your password."),
}


def password_problem(password: str, repeat: str) -> Text | None:
    """Why a new password cannot be used, or None."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return T("The password must be %(min)s to %(max)s characters.", min=MIN_PASSWORD, max=MAX_PASSWORD)
    if password != repeat:
        return T("The two passwords differ.")
    return None


class MeHandler(AdminHandler):
    nav = "me"

    def get(self) -> None:
        self.render_me(notice=NOTICES.get(self.get_query_argument("done", "")))

    def render_me(self, notice: Text | None = None, error: Text | None = None) -> None:
        account = self.current_user["account"]
        self.render("admin/me.html", account=account, notice=notice, error=error,
                    wechat=short_openid(account["wechat_openid"]) if account.get("wechat_openid") else None,
                    min_password=MIN_PASSWORD)


class PasswordHandler(MeHandler):
    """POST: a named admin's new password; the current one is checked like a sign-in (throttled)."""

    edit_role = None  # one's own password: a viewer may change it too

    async def post(self) -> None:
        account, name = self.current_user["account"], self.current_user["name"]
        if account.get("bootstrap"):
            self.set_status(400)
            self.render_me(error=T("The admin password is set by WX_ADMIN_PASSWORD."))
            return
        new = self.get_body_argument("new_password", "", strip=False)[:MAX_PASSWORD + 1]
        problem = password_problem(new, self.get_body_argument("repeat_password", "", strip=False)[:MAX_PASSWORD + 1])
        if problem:
            self.set_status(400)
            self.render_me(error=problem)
            return
        # Counted and throttled like a sign-in (CWE-307): a stolen cookie cannot guess the password here.
        result = await self.admin_auth.login(self.request.remote_ip,
                                             self.get_body_argument("password", "", strip=False), name)
        if not result.ok:
            self.set_status(429 if result.locked_for > 0 else 403)
            if result.locked_for > 0:
                self.set_header("Retry-After", str(math.ceil(result.locked_for)))
            self.render_me(error=T("The current password is wrong; nothing was changed."))
            return
        await self.admin_auth.set_password(name, new, by=self.who)
        # Every session of this admin ended with the old password; this browser gets a new one.
        self.set_wx_cookie(ADMIN_COOKIE, await self.admin_auth.issue_session(name))
        self.see_other("/admin/me?done=changed")


class BindHandler(AdminScanMixin, AdminHandler):
    """GET: a code to scan with the phone whose WeChat will sign in as this admin."""

    nav = "me"

    async def get(self) -> None:
        await self.show_admin_scan("admin_bind", "/admin/me", "/admin/me/bind/{token}/finish",
                                   admin=self.current_user["name"])


class BindFinishHandler(AdminScanMixin, MeHandler):
    """GET: binds the WeChat that confirmed, for the admin who asked, in the browser that asked."""

    async def get(self, token: str) -> None:
        doc = await self.services.store.get_scan(token)
        if doc is None or doc.get("admin") != self.current_user["name"]:
            self.set_status(403)
            self.render_me(error=T("This binding code is not yours."))
            return
        doc = await self.services.scan_login.finish(token, self.pc_secret(), purpose="admin_bind")
        if doc is None:
            self.set_status(403)
            self.render_me(error=T("The binding was not confirmed on the phone: try again."))
            return
        try:
            await self.services.admins.bind(self.current_user["name"], doc["openid"], by=self.who)
        except AdminError as exc:
            self.set_status(409)
            self.render_me(error=exc.args[0])
            return
        self.see_other("/admin/me?done=bound")


class UnbindHandler(MeHandler):
    """POST: forgets this admin's WeChat (a lost or changed phone); scan sign-in stops at once."""

    edit_role = None  # one's own account: a viewer may unbind too

    async def post(self) -> None:
        await self.services.admins.unbind(self.current_user["name"], by=self.who)
        self.see_other("/admin/me?done=unbound")


default_handlers = [
    (r"/admin/me", MeHandler),
    (r"/admin/me/unbind", UnbindHandler),
    (r"/admin/me/password", PasswordHandler),
    (r"/admin/me/bind", BindHandler),
    (rf"/admin/me/bind/{SCAN_TOKEN}/finish", BindFinishHandler),
]
