"""Starting a sign-in, whatever the browser: WeChat's authorization inside WeChat, a scan code elsewhere."""

from __future__ import annotations

from handlers.base import BaseHandler
from server.authorize import WEB_SCOPE, add_cookie_token
from server.qrimage import qr_svg
from server.scanlogin import SCAN_SECONDS, new_secret
from server.wechat.browser import describe

STATE_COOKIE = "wx_state"
STATE_COOKIE_SECONDS = 600  # as long as the state token itself
SCAN_COOKIE = "wx_pc"       # the PC browser's secret that binds its scan codes to it
SCAN_COOKIE_SECONDS = 30 * 86400
LAND_COOKIE = "wx_land"     # the entry a fresh sign-in is on its way to, for the funnel's "landed"
LAND_COOKIE_SECONDS = 600


class AuthFlowMixin:
    """Starts a sign-in bound to this browser: authorization in WeChat, a scan page elsewhere."""

    async def enter_flow(self: BaseHandler, key: str | None, title: str, target: str, scope: str) -> None:
        """The one door to sign-in for links and protected pages."""
        if self.in_wechat():
            await self.start_flow(key, target, scope)
            return
        # WeChat answers its authorize URL outside WeChat with "请在微信客户端打开链接", a dead end
        # (docs/wechat-protocol.md §17): a PC browser is never sent there. With a website app
        # it goes to WeChat's own QR sign-in page (§16); without one, to our scan page.
        if self.config.web_appid:
            await self.start_flow(key, target, WEB_SCOPE)
            return
        await self.show_scan_page(key, title, target, scope)

    def head_for_page(self: BaseHandler, key: str | None, target: str) -> None:
        """Redirects a signed-in browser to its page; a page of this site then counts the landing."""
        if key and target.startswith("/"):
            self.set_wx_cookie(LAND_COOKIE, key, max_age=LAND_COOKIE_SECONDS)
        self.redirect(target)

    def count_landing(self: BaseHandler) -> None:
        """Called by a business page that rendered: the sign-in that led here has landed."""
        raw = self.get_signed_cookie(LAND_COOKIE, max_age_days=LAND_COOKIE_SECONDS / 86400)
        if raw:
            self.clear_wx_cookie(LAND_COOKIE)
            if self.services.funnel is not None:
                self.services.funnel.count(raw.decode("ascii", "replace"), "landed")

    async def start_flow(self: BaseHandler, key: str | None, target: str, scope: str, retry: int = 0) -> None:
        token, url = await self.services.auth.begin(key, target, scope, retry)
        self.set_wx_cookie(STATE_COOKIE, add_cookie_token(self._state_cookie(), token), max_age=STATE_COOKIE_SECONDS)
        self.set_header("Cache-Control", "no-store")
        self.redirect(url)

    def _state_cookie(self: BaseHandler) -> str | None:
        raw = self.get_signed_cookie(STATE_COOKIE, max_age_days=STATE_COOKIE_SECONDS / 86400)
        return raw.decode("ascii", "replace") if raw else None

    # ---- scan to sign in (server/scanlogin.py) ---------------------------------------------------

    def pc_secret(self: BaseHandler, create: bool = False) -> str | None:
        raw = self.get_signed_cookie(SCAN_COOKIE, max_age_days=SCAN_COOKIE_SECONDS / 86400)
        if raw:
            return raw.decode("ascii", "replace")
        if not create:
            return None
        secret = new_secret()
        self.set_wx_cookie(SCAN_COOKIE, secret, max_age=SCAN_COOKIE_SECONDS)
        return secret

    async def show_scan_page(self: BaseHandler, key: str | None, title: str, target: str, scope: str) -> None:
        token = await self.services.scan_login.start(
            key, title, target, scope, self.pc_secret(create=True), self.request.remote_ip,
            describe(self.request.headers.get("User-Agent")))
        scan_url = f"{self.config.app_host}/wx/scan/{token}"
        self.set_header("Cache-Control", "no-store")
        self.render("scan_pc.html", title=title, token=token, scan_url=scan_url, qr=qr_svg(scan_url),
                    seconds=SCAN_SECONDS)
