"""/admin/menu: build, preview, save and publish the custom menu, beside the menu WeChat has now."""

from __future__ import annotations

from handlers.admin.base import AdminHandler
from handlers.admin.menu_form import BUILDER_KINDS, SLOT_FIELD, menu_from_slots, slots_from_menu
from server.i18n import T, Text
from server.links import entry_key_of
from server.menus import menu_warnings
from server.statemap import Entry
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure
from server.wechat.menu import (MAX_SUB, MAX_TOP, SUB_DISPLAY_CHARS, TOP_DISPLAY_CHARS, MenuInvalid, check_menu,
                                menu_json, menu_label, parse_menu_json)


class MenuPageMixin:
    async def render_menu(self: AdminHandler, *, form: dict | None = None, json_text: str | None = None,
                          preview: dict | None = None, errors: dict | None = None, problems: list | None = None,
                          notice: Text | None = None, problem: Text | None = None, tab: str = "builder") -> None:
        service = self.services.menus
        saved = await service.saved()
        entries = [Entry.from_doc(doc) for doc in await self.store.list_states()]
        builder_complete = True
        if form is None:
            form, builder_complete = slots_from_menu(saved, self.config.app_host)
        if json_text is None:
            json_text = menu_json(saved)
        remote, remote_error = None, None
        try:
            remote = await service.remote()
        except (WeChatError, WeChatUnavailable) as exc:
            remote_error = describe_failure(exc)
        shown = preview or saved
        warnings = menu_warnings(shown, [e.key for e in entries], self.config.app_host) if shown else []
        self.render("admin/menu.html", form=form, json_text=json_text, saved=saved, preview=shown,
                    previewing=preview is not None, errors=errors or {}, problems=problems or [],
                    warnings=warnings, entries=entries, remote=remote, remote_error=remote_error,
                    remote_json=menu_json(remote), builder_complete=builder_complete, notice=notice,
                    problem=problem, tab=tab, max_top=MAX_TOP, max_sub=MAX_SUB, kinds=BUILDER_KINDS,
                    top_chars=TOP_DISPLAY_CHARS, sub_chars=SUB_DISPLAY_CHARS, menu_label=menu_label,
                    describe=self.describe_button)

    def describe_button(self: AdminHandler, button: dict) -> Text | str:
        """What a leaf button does, in words for an admin."""
        kind = button.get("type")
        if kind == "click":
            return T("replies with the link of entry “%(key)s”", key=button.get("key"))
        if kind == "view":
            key = entry_key_of(button.get("url", ""), self.config.app_host)
            if key:
                return T("opens entry “%(key)s”", key=key)
            return T("opens %(url)s", url=button.get("url"))
        return f"{kind}"

    async def publish_or_explain(self: AdminHandler, menu: dict) -> None:
        try:
            await self.services.menus.publish(menu, by=self.who)
        except (WeChatError, WeChatUnavailable) as exc:
            self.set_status(502)
            await self.render_menu(problem=T("%(failure)s — the menu is saved; publish it again later.",
                                             failure=describe_failure(exc)))
            return
        self.see_other("/admin/menu?done=published")


class MenuHandler(MenuPageMixin, AdminHandler):
    nav = "menu"

    async def get(self) -> None:
        notice = {"saved": T("Menu saved (not published yet)."),
                  "published": T("Menu published to WeChat; followers see it within about 5 minutes.")}.get(
            self.get_query_argument("done", ""))
        await self.render_menu(notice=notice)

    async def post(self) -> None:
        source = self.get_body_argument("source", "builder")
        action = self.get_body_argument("action", "preview")
        form = {name: values[-1].decode("utf-8", "replace") for name, values in self.request.body_arguments.items()
                if SLOT_FIELD.match(name)}
        json_text = self.get_body_argument("menu_json", "")
        errors: dict[str, Text] = {}
        problems: list = []
        if source == "json":
            try:
                menu = parse_menu_json(json_text)
            except MenuInvalid as exc:
                menu, problems = None, exc.problems
        else:
            menu, errors = menu_from_slots(form, self.config.app_host)
            json_text = None  # the JSON tab keeps showing the saved menu
        if errors or problems:
            self.set_status(400)
            await self.render_menu(form=form if source != "json" else None, json_text=json_text, errors=errors,
                                   problems=problems, tab=source,
                                   problem=T("The menu has problems, marked below. Nothing was saved."))
            return
        menu = check_menu(menu)
        if action == "preview":
            await self.render_menu(form=form if source != "json" else None, json_text=menu_json(menu), preview=menu,
                                   tab=source, notice=T("This is a preview; nothing is saved yet."))
            return
        await self.services.menus.save(menu, by=self.who)
        if action != "publish":
            self.see_other("/admin/menu?done=saved")
            return
        await self.publish_or_explain(menu)


class MenuPublishHandler(MenuPageMixin, AdminHandler):
    """One click: publishes the saved menu as it is."""

    nav = "menu"

    async def post(self) -> None:
        saved = await self.services.menus.saved()
        if not saved:
            self.set_status(400)
            await self.render_menu(problem=T("No menu is saved yet: build one below first."))
            return
        try:
            menu = check_menu(saved)
        except MenuInvalid as exc:
            self.set_status(400)
            await self.render_menu(problems=exc.problems, tab="json",
                                   problem=T("The saved menu is not valid; fix it below."))
            return
        await self.publish_or_explain(menu)


default_handlers = [
    (r"/admin/menu", MenuHandler),
    (r"/admin/menu/publish", MenuPublishHandler),
]
