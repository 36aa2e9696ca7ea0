"""/wx/scan/<token>: the phone's confirm page, and the PC page's long poll and finish (server/scanlogin.py)."""

from __future__ import annotations

import logging

import tornado.web

from handlers.base import BaseHandler, PageError
from handlers.flow import AuthFlowMixin
from server.i18n import T
from server.qrimage import qr_png
from server.scanlogin import STATUSES, TooManyWaiters
from server.wechat.browser import described_text

log = logging.getLogger("wxauth.scanlogin")

SCAN_TOKEN = r"([0-9a-f]{32})"

PROBLEMS = {
    # Expired codes are deleted soon after (TTL), so an unknown one is most often an old one.
    "unknown": (404, T("This code is no longer valid"), T("This code has expired or is not valid. Ask for a fresh code "
                                                         "on the computer and scan it again.")),
    "expired": (410, T("This code has expired"), T("This code has expired. Ask for a fresh code on the computer and "
                                                   "scan it again.")),
    "other_phone": (409, T("Another WeChat scanned this code"), T("Another WeChat account already scanned this code. "
                    "If that was not you, do nothing: the computer will not be signed in.")),
    "denied": (403, T("This WeChat is not an admin"), T("This WeChat is not bound to an active admin of this account, "
               "so it cannot sign in to the admin pages. An admin binds their WeChat on their own account page first. "
               "The computer was not signed in, and the attempt was recorded.")),
    "done": (409, T("This code was already confirmed or cancelled"), T("This code was already confirmed or cancelled. Scan a fresh code "
                                                    "if you still want to sign in.")),
}


class ScanPhoneHandler(AuthFlowMixin, BaseHandler):
    """GET: what will happen, with Sign in / Cancel; POST: the tap. Only inside WeChat, signed in."""

    async def get(self, token: str) -> None:
        self.set_header("Cache-Control", "no-store")
        if not self.in_wechat():
            self.render("scan_phone.html", state="not_wechat", doc=None)
            return
        user = self.current_user
        doc = await self.services.store.get_scan(token)
        if doc is None:
            self._problem("unknown")
            return
        if user is None:
            # The phone signs in as it does for any link, then comes back here.
            await self.start_flow(doc.get("key"), self.request.uri, doc.get("scope") or "snsapi_base")
            return
        doc, problem = await self.services.scan_login.open_on_phone(token, user["openid"])
        if problem:
            self._problem(problem)
            return
        if not await self._admin_allowed(doc, user["openid"]):
            return
        self.render("scan_phone.html", state="confirm", doc=doc, agent=self.say(described_text(doc.get("pc_agent"))))

    async def _admin_allowed(self, doc: dict, openid: str) -> bool:
        """An admin sign-in code works only for a WeChat bound to an active admin: anyone else is
        refused here, and the computer's page hears "denied" at once."""
        if doc.get("purpose") != "admin_login":
            return True
        if await self.services.admins.by_openid(openid) is not None:
            return True
        await self.services.scan_login.deny(doc["_id"], openid)
        await self.services.admins.refuse_scan(openid, self.request.remote_ip)
        self._problem("denied")
        return False

    async def post(self, token: str) -> None:
        self.set_header("Cache-Control", "no-store")
        user = self.current_user
        if user is None or not self.in_wechat():
            raise PageError(403, T("Open the scanned link in WeChat again."))
        action = self.get_body_argument("action", "")
        if action not in ("confirm", "cancel"):
            raise PageError(400, T("Tap “Sign in” or “Cancel”."))
        doc, problem = await self.services.scan_login.decide(token, user["openid"], action == "confirm")
        if problem:
            self._problem(problem)
            return
        self.render("scan_phone.html", state="confirmed" if action == "confirm" else "cancelled", doc=doc)

    def _problem(self, problem: str) -> None:
        status, title, text = PROBLEMS[problem]
        self.render_problem(status, title, text)


class ScanWaitHandler(AuthFlowMixin, BaseHandler):
    """GET ?since=STATUS: the PC page's long poll; answers when the status changes (or in 25 s)."""

    async def get(self, token: str) -> None:
        self.set_header("Cache-Control", "no-store")
        since = self.get_query_argument("since", "pending")
        if since not in STATUSES:
            raise PageError(400, T("The status to wait from is not valid."), "since must be a status")
        try:
            status = await self.services.scan_login.wait(token, self.pc_secret(), since)
        except TooManyWaiters:
            self.set_status(503)
            self.set_header("Retry-After", "5")
            self.write({"status": since, "retry": True})
            return
        if status is None:
            # Not the browser that asked for this code: it learns nothing about it.
            self.set_status(403)
            self.write({"status": "refused"})
            return
        self.write({"status": status})


class ScanFinishHandler(AuthFlowMixin, BaseHandler):
    """GET: the confirmed PC signs in with the phone's identity and goes on to its page, once."""

    async def get(self, token: str) -> None:
        self.set_header("Cache-Control", "no-store")
        doc = await self.services.scan_login.finish(token, self.pc_secret())
        if doc is None:
            self.render_problem(403, T("The sign-in could not be completed"), T("This sign-in was not confirmed for this browser. "
                                "Open the page again and scan the fresh code."), retry_url=self.config.default_page)
            return
        self.start_session(doc["openid"], doc.get("scope") or "snsapi_base")
        self.head_for_page(doc.get("key"), self.services.auth.safe(doc.get("target")))


class ScanCodeImageHandler(AuthFlowMixin, BaseHandler):
    """GET: the PC's code as a PNG at print size (only for the browser that asked for it)."""

    async def get(self, token: str) -> None:
        doc = await self.services.store.get_scan(token)
        if not self.services.scan_login.belongs(doc, self.pc_secret()):
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "no-store")
        self.finish(qr_png(f"{self.config.app_host}/wx/scan/{token}"))


default_handlers = [
    (rf"/wx/scan/{SCAN_TOKEN}", ScanPhoneHandler),
    (rf"/wx/scan/{SCAN_TOKEN}/wait", ScanWaitHandler),
    (rf"/wx/scan/{SCAN_TOKEN}/finish", ScanFinishHandler),
    (rf"/wx/scan/{SCAN_TOKEN}/qr\.png", ScanCodeImageHandler),
]
