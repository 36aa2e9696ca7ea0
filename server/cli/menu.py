"""`menu show|publish|save`: the custom menu from the command line."""

from __future__ import annotations

import sys

from server.cli.base import CLI_USER, CommandError
from server.menus import menu_warnings
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure
from server.wechat.menu import MenuInvalid, check_menu, menu_json, parse_menu_json


def add_parser(sub) -> None:
    menu = sub.add_parser("menu", help="the custom menu").add_subparsers(dest="action", required=True)
    mshow = menu.add_parser("show", help="the menu WeChat currently has")
    mshow.add_argument("--saved", action="store_true", help="show the saved menu instead (the one /admin/menu edits)")
    publish = menu.add_parser("publish", help="publish a menu JSON file (default: the saved menu)")
    publish.add_argument("file", nargs="?")
    msave = menu.add_parser("save", help="save a menu JSON file without publishing it")
    msave.add_argument("file")


def _read_menu_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}") from None
    try:
        return parse_menu_json(text)
    except MenuInvalid as exc:
        raise CommandError(f"{path} cannot be published:\n  " + "\n  ".join(str(p) for p in exc.problems)) from None


async def menu_show(services, args) -> int:
    """Prints WeChat's current menu as JSON (or the saved one with --saved)."""
    if args.saved:
        menu = await services.menus.saved()
        if not menu:
            raise CommandError("no menu saved yet (python -m server menu save FILE)", code=1)
        print(menu_json(menu))
        return 0
    try:
        menu = await services.menus.remote()
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(describe_failure(exc), code=1) from None
    if menu is None:
        print("WeChat has no custom menu for this account", file=sys.stderr)
        return 0
    print(menu_json(menu))
    return 0


async def menu_publish(services, args) -> int:
    """Publishes a menu JSON file, or the saved menu when no file is given; exit 2 on a bad file."""
    if args.file:
        menu, source = _read_menu_file(args.file), args.file
    else:
        saved = await services.menus.saved()
        if not saved:
            raise CommandError("no menu saved yet: give a JSON file, or save one at /admin/menu or with `menu save FILE`")
        try:
            menu = check_menu(saved)
        except MenuInvalid as exc:
            raise CommandError("the saved menu is not valid:\n  " + "\n  ".join(str(p) for p in exc.problems)) from None
        source = "the saved menu"
    try:
        await services.menus.publish(menu, by=CLI_USER)
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(describe_failure(exc), code=1) from None
    print(f"published {source}: {len(menu['button'])} top-level buttons")
    keys = [entry.key for entry, _ in await services.state_entries.rows()]
    for warning in menu_warnings(menu, keys, services.config.app_host):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


async def menu_save(services, args) -> int:
    """Saves a menu JSON file as the menu /admin/menu edits and `menu publish` sends."""
    menu = await services.menus.save(_read_menu_file(args.file), by=CLI_USER)
    print(f"saved {args.file}: {len(menu['button'])} top-level buttons (not published yet)")
    return 0


COMMANDS = {("menu", "show"): menu_show, ("menu", "publish"): menu_publish, ("menu", "save"): menu_save}
