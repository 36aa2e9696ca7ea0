"""/admin/login/scan: sign in to /admin by WeChat scan, and the scan pages admins share (server/scanlogin.py)."""

from __future__ import annotations

import logging

from handlers.admin.base import AdminHandler, next_url
from handlers.flow import AuthFlowMixin
from server.admin_auth import ADMIN_COOKIE
from server.i18n import T
from server.qrimage import qr_svg
from server.scanlogin import SCAN_SECONDS
from server.wechat.browser import describe

log = logging.getLogger("wxauth.admin")

SCAN_TOKEN = r"([0-9a-f]{32})"


class AdminScanMixin(AuthFlowMixin):
    """Shows a scan code for an admin purpose ("admin_login", "admin_bind"), finished at `finish`."""

    async def show_admin_scan(self: AdminHandler, purpose: str, target: str, finish: str, admin: str | None = None) -> None:
        token = await self.services.scan_login.start(
            # The phone's page names what is signed in to, in the words of the admin who asked.
            None, self.say(T("wxauth admin")), target, "snsapi_base", self.pc_secret(create=True), self.request.remote_ip,
            describe(self.request.headers.get("User-Agent")), purpose=purpose, admin=admin)
        scan_url = f"{self.config.app_host}/wx/scan/{token}"
        self.render("admin/scan.html", purpose=purpose, token=token, scan_url=scan_url, qr=qr_svg(scan_url),
                    seconds=SCAN_SECONDS, finish=finish.format(token=token))


class ScanLoginHandler(AdminScanMixin, AdminHandler):
    """GET: the PC's code; an admin whose WeChat is bound scans it and confirms on the phone."""

    login_required = False

    async def get(self) -> None:
        target = next_url(self.get_query_argument("next", None))
        if self.current_user is not None:
            self.redirect(target)
            return
        await self.show_admin_scan("admin_login", target, "/admin/login/scan/{token}/finish")


class ScanLoginFinishHandler(AuthFlowMixin, AdminHandler):
    """GET: the confirmed PC signs in as the admin bound to the phone's WeChat, once."""

    login_required = False

    async def get(self, token: str) -> None:
        doc = await self.services.scan_login.finish(token, self.pc_secret(), purpose="admin_login")
        if doc is None:
            self.render_problem(403, T("Sign-in not completed"), T("This sign-in was not confirmed for this browser. Open "
                                "the sign-in page again and scan the fresh code."), retry_url="/admin/login")
            return
        # Asked again: the admin may have been disabled or unbound since the phone confirmed.
        account = await self.services.admins.by_openid(doc["openid"])
        if account is None:
            await self.services.admins.refuse_scan(doc["openid"], self.request.remote_ip)
            self.render_problem(403, T("This WeChat is not an admin"), T("The WeChat that confirmed is not bound to an "
                                "active admin: this computer was not signed in. Sign in with your password instead."),
                                retry_url="/admin/login")
            return
        self.set_wx_cookie(ADMIN_COOKIE, await self.admin_auth.issue_session(account["_id"]))
        log.info("admin %s signed in by WeChat scan from %s", account["_id"], self.request.remote_ip)
        self.redirect(next_url(doc.get("target")))


default_handlers = [
    (r"/admin/login/scan", ScanLoginHandler),
    (rf"/admin/login/scan/{SCAN_TOKEN}/finish", ScanLoginFinishHandler),
]
