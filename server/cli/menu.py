"""`menu show|publish|save`: the custom menu from the command line."""

from __future__ import annotations

import sys

from server.cli.base import CLI_USER, CommandError, say
from server.i18n import T
from server.menus import menu_warnings
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure
from server.wechat.menu import MenuInvalid, check_menu, menu_json, parse_menu_json


def add_parser(sub) -> None:
    menu = sub.add_parser("menu", help=say(T("the custom menu"))).add_subparsers(dest="action", required=True)
    mshow = menu.add_parser("show", help=say(T("the menu WeChat currently has")))
    mshow.add_argument("--saved", action="store_true",
                       help=say(T("show the saved menu instead (the one /admin/menu edits)")))
    publish = menu.add_parser("publish", help=say(T("publish a menu JSON file (default: the saved menu)")))
    publish.add_argument("file", nargs="?")
    msave = menu.add_parser("save", help=say(T("save a menu JSON file without publishing it")))
    msave.add_argument("file")


def _read_menu_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else T("not UTF-8 text")
        raise CommandError(T("cannot read %(path)s: %(reason)s", path=path, reason=reason)) from None
    try:
        return parse_menu_json(text)
    except MenuInvalid as exc:
        raise CommandError(T("%(path)s cannot be published:", path=path), details=_problems(exc)) from None


def _problems(exc: MenuInvalid) -> list[str]:
    """Each rule a menu breaks, for a line of its own, in the terminal's language (a Text or a plain string)."""
    return [_problem(p) for p in exc.problems]


def _problem(problem) -> str:
    # "where: why", as MenuProblem's str() writes it, each part rendered (a Text or a plain string).
    if hasattr(problem, "where") and hasattr(problem, "message"):
        return f"{say(problem.where)}: {say(problem.message)}"
    return say(problem)


async def menu_show(services, args) -> int:
    """Prints WeChat's current menu as JSON (or the saved one with --saved)."""
    if args.saved:
        menu = await services.menus.saved()
        if not menu:
            raise CommandError(T("no menu saved yet (python -m server menu save FILE)"), code=1)
        print(menu_json(menu))
        return 0
    try:
        menu = await services.menus.remote()
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(describe_failure(exc), code=1) from None
    if menu is None:
        print(say(T("WeChat has no custom menu for this account")), file=sys.stderr)
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
            raise CommandError(T("no menu saved yet: give a JSON file, or save one at /admin/menu or with "
                                 "`menu save FILE`"))
        try:
            menu = check_menu(saved)
        except MenuInvalid as exc:
            raise CommandError(T("the saved menu is not valid:"), details=_problems(exc)) from None
        source = None
    try:
        await services.menus.publish(menu, by=CLI_USER)
    except (WeChatError, WeChatUnavailable) as exc:
        raise CommandError(describe_failure(exc), code=1) from None
    if source is None:
        print(say(T("published the saved menu: %(n)s top-level buttons", n=len(menu["button"]))))
    else:
        print(say(T("published %(path)s: %(n)s top-level buttons", path=source, n=len(menu["button"]))))
    keys = [entry.key for entry, _ in await services.state_entries.rows()]
    for warning in menu_warnings(menu, keys, services.config.app_host):
        print(say(T("warning: %(warning)s", warning=say(warning))), file=sys.stderr)
    return 0


async def menu_save(services, args) -> int:
    """Saves a menu JSON file as the menu /admin/menu edits and `menu publish` sends."""
    menu = await services.menus.save(_read_menu_file(args.file), by=CLI_USER)
    print(say(T("saved %(path)s: %(n)s top-level buttons (not published yet)", path=args.file, n=len(menu["button"]))))
    return 0


COMMANDS = {("menu", "show"): menu_show, ("menu", "publish"): menu_publish, ("menu", "save"): menu_save}
