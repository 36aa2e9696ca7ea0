"""/admin/invite/<token>: an invited admin sets their password (once), is signed in, and is offered WeChat binding."""

from __future__ import annotations

from handlers.admin.base import AdminHandler
from handlers.base import PageError
from handlers.admin.me import password_problem
from server.admin_auth import ADMIN_COOKIE, MAX_PASSWORD, MIN_PASSWORD
from server.admins import AdminError
from server.i18n import T

INVITE_TOKEN = r"([A-Za-z0-9_-]{20,64})"

PROBLEMS = {
    "unknown": (404, T("Invitation link not valid"), T("This invitation link is not valid. Ask an owner for a new one.")),
    "expired": (410, T("Invitation link expired"), T("This invitation has expired (links work for 24 hours). Ask an "
                                                     "owner for a new one.")),
    "used": (409, T("Invitation link already used"), T("This invitation was already used. Sign in with the password you "
                                                       "set, or ask an owner for a new invitation.")),
}


class InviteHandler(AdminHandler):
    login_required = False
    edit_role = None      # the invited person is not signed in yet; the token is the credential
    log_path = "/admin/invite/…"  # the token is a credential: never in the access log

    async def get(self, token: str) -> None:
        account = await self._invitation(token)
        if account is not None:
            self.render("admin/invite.html", account=account, error=None, min_password=MIN_PASSWORD)

    async def _invitation(self, token: str) -> dict | None:
        account, problem = await self.services.admins.invitation(token)
        if problem:
            status, title, text = PROBLEMS[problem]
            self.render_problem(status, title, text, retry_url="/admin/login")
        return account

    async def post(self, token: str) -> None:
        account = await self._invitation(token)
        if account is None:
            return
        password = self.get_body_argument("new_password", "", strip=False)[:MAX_PASSWORD + 1]
        problem = password_problem(password, self.get_body_argument("repeat_password", "", strip=False)[:MAX_PASSWORD + 1])
        if problem:
            self.set_status(400)
            self.render("admin/invite.html", account=account, error=problem, min_password=MIN_PASSWORD)
            return
        try:
            # Spent atomically: of two submissions at once, one wins and the other is told.
            account = await self.services.admins.use_invitation(token)
        except AdminError as exc:
            raise PageError(409, exc.args[0]) from None
        name = account["_id"]
        await self.admin_auth.set_password(name, password, by=f"{name}@{self.request.remote_ip}")
        self.set_wx_cookie(ADMIN_COOKIE, await self.admin_auth.issue_session(name))
        self.see_other("/admin/me?done=welcome")


default_handlers = [(rf"/admin/invite/{INVITE_TOKEN}", InviteHandler)]
