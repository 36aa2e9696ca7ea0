"""The account's custom menu: the saved copy, publishing it with the global token, and WeChat's copy."""

from __future__ import annotations

import logging

from server.i18n import T, Text
from server.links import entry_key_of
from server.wechat.client import WeChatError
from server.wechat.menu import MenuProblem, check_menu, iter_leaves, normalize_menu

log = logging.getLogger("wxauth.menu")

SETTING = "menu"  # the saved menu lives in the settings collection under this name


def menu_warnings(menu: dict, state_keys, app_host: str) -> list[Text]:
    """Buttons WeChat accepts but that would not lead anywhere: unknown state keys (Texts: a page
    renders them with say(), a command with i18n.say(w, i18n.command_locale()))."""
    keys = set(state_keys)
    warnings = []
    for path, button in iter_leaves(menu):
        where = MenuProblem(path, "", "").where
        if button.get("type") == "click" and button.get("key") not in keys:
            warnings.append(T("%(where)s: key %(key)s is not in the state map; a tap gets the default reply",
                              where=where, key=repr(button.get("key"))))
        if button.get("type") == "view":
            key = entry_key_of(button.get("url", ""), app_host)
            if key is not None and key not in keys:
                warnings.append(T("%(where)s: the link opens entry %(key)s, which does not exist", where=where, key=repr(key)))
    return warnings


class MenuService:
    """The saved menu (settings "menu"), publishing through the global token, and WeChat's copy."""

    def __init__(self, config, store, wechat, tokens):
        self.config = config
        self.store = store
        self.wechat = wechat
        self.tokens = tokens

    async def saved(self) -> dict | None:
        return await self.store.get_setting(SETTING)

    async def save(self, menu: dict, by: str) -> dict:
        menu = check_menu(menu)
        await self.store.set_setting(SETTING, menu, by=by)
        return menu

    async def publish(self, menu: dict, by: str) -> dict:
        """Sends `menu` to /cgi-bin/menu/create; raises MenuInvalid, WeChatError or WeChatUnavailable."""
        menu = check_menu(menu)
        await self.tokens.call(lambda token: self.wechat.menu_create(token, menu))
        await self.store.record_audit(by, "menu.publish", SETTING, None, menu)
        log.info("menu with %d buttons published by %s", len(menu["button"]), by)
        return menu

    async def remote(self) -> dict | None:
        """The menu WeChat has now (/cgi-bin/menu/get), None when none is published (46003)."""
        try:
            answer = await self.tokens.call(self.wechat.menu_get)
        except WeChatError as exc:
            if exc.errcode == 46003:
                return None
            raise
        return normalize_menu(answer.get("menu") or answer)
