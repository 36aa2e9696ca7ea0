"""/admin/replies: the welcome text and the default reply."""

from __future__ import annotations

from handlers.admin.base import AdminHandler
from server.i18n import T
from server.messaging import DEFAULT_REPLY, DEFAULT_WELCOME
from server.replytexts import NAMES


class RepliesHandler(AdminHandler):
    nav = "replies"

    async def get(self) -> None:
        notice = self.say(T("Saved.")) if self.get_query_argument("saved", None) else None
        self.render_page(await self.services.reply_texts.current(), {}, notice)

    def render_page(self, values: dict, errors: dict, notice: str | None = None) -> None:
        messages = self.services.messages
        self.render("admin/replies.html", values=values, errors=errors, notice=notice,
                    defaults={"welcome": DEFAULT_WELCOME, "default_reply": DEFAULT_REPLY},
                    previews={"welcome": messages.welcome_text(), "default_reply": messages.default_text()})

    async def post(self) -> None:
        values = {name: self.get_body_argument(name, "").replace("\r\n", "\n").strip() for name in NAMES}
        errors = await self.services.reply_texts.save(values, by=self.who)
        if errors:
            self.set_status(400)
            self.render_page(values, errors)
            return
        self.see_other("/admin/replies?saved=1")


default_handlers = [(r"/admin/replies", RepliesHandler)]
