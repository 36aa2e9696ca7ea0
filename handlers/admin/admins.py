"""/admin/admins (owners only): the admins, inviting one (the link is shown once), changing a role, disabling,
and a new invitation for an existing account (a forgotten password, a disabled admin let back in)."""

from __future__ import annotations

from handlers.admin.base import AdminHandler
from server.admins import AdminError
from server.i18n import T, Text
from server.logtags import short_openid
from server.roles import ROLES

NAME = r"([a-z0-9_.-]{1,32})"
DONE = {"role": T("Role changed."), "disabled": T("Disabled: their sessions have ended.")}


class AdminsHandler(AdminHandler):
    nav = "admins"
    view_role = "owner"
    edit_role = "owner"

    async def get(self) -> None:
        await self.render_page(notice=DONE.get(self.get_query_argument("done", "")))

    async def render_page(self, notice: Text | None = None, problem: Text | None = None, invite_url: str | None = None,
                          invited: str | None = None, values: dict | None = None) -> None:
        self.render("admin/admins.html", admins=await self.services.admins.all(), roles=ROLES, notice=notice,
                    problem=problem, invite_url=invite_url, invited=invited, values=values or {"role": "editor"},
                    short_openid=short_openid)

    async def post(self) -> None:
        """Invites: the link appears on this answer only (the server keeps just its hash)."""
        values = {"name": self.get_body_argument("name", "")[:64].strip(), "role": self.get_body_argument("role", "")}
        try:
            token = await self.services.admins.invite(values["name"], values["role"], by=self.who)
        except AdminError as exc:
            self.set_status(400)
            await self.render_page(problem=exc.args[0], values=values)
            return
        await self.render_page(invite_url=self.services.admins.invite_url(token), invited=values["name"])


class AdminRoleHandler(AdminsHandler):
    async def post(self, name: str) -> None:
        try:
            await self.services.admins.set_role(name, self.get_body_argument("role", ""), by=self.who)
        except AdminError as exc:
            self.set_status(409)
            await self.render_page(problem=exc.args[0])
            return
        self.see_other("/admin/admins?done=role")


class AdminDisableHandler(AdminsHandler):
    async def post(self, name: str) -> None:
        try:
            await self.services.admins.disable(name, by=self.who)
        except AdminError as exc:
            self.set_status(409)
            await self.render_page(problem=exc.args[0])
            return
        if name == self.current_user["name"]:
            self.see_other("/admin/login?out=1")  # disabled themselves: their session is gone
            return
        self.see_other("/admin/admins?done=disabled")


class AdminReinviteHandler(AdminsHandler):
    async def post(self, name: str) -> None:
        if name == self.current_user["name"]:
            # It would end this very session; one's own password is changed on /admin/me.
            self.set_status(409)
            await self.render_page(problem=T("To change your own password, use your account page."))
            return
        try:
            token = await self.services.admins.reinvite(name, by=self.who)
        except AdminError as exc:
            self.set_status(409)
            await self.render_page(problem=exc.args[0])
            return
        await self.render_page(invite_url=self.services.admins.invite_url(token), invited=name)


default_handlers = [
    (r"/admin/admins", AdminsHandler),
    (rf"/admin/admins/{NAME}/role", AdminRoleHandler),
    (rf"/admin/admins/{NAME}/disable", AdminDisableHandler),
    (rf"/admin/admins/{NAME}/reinvite", AdminReinviteHandler),
]
