"""The management commands (states, users, menu, audit, replies): the admin pages' operations for scripts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from server.embedded import EmbeddedMongo, running_uri
from server.statemap import EntryError, Entry, keyword_conflicts, validate_entry
from server.store import Store, make_client
from server.terminal import digits_arg, row, safe

EXIT_BAD_INPUT = 2
CLI_USER = "cli"


def add_commands(sub) -> None:
    states = sub.add_parser("states", help="the state→page map").add_subparsers(dest="action", required=True)
    states.add_parser("list", help="list map entries")
    set_ = states.add_parser("set", help="add or change an entry")
    set_.add_argument("key")
    set_.add_argument("page")
    set_.add_argument("--title", default="")
    set_.add_argument("--keywords", default="", help="comma-separated, e.g. 成绩,score")
    set_.add_argument("--scope", default="snsapi_base", help="snsapi_base (silent) or snsapi_userinfo (asks for profile)")
    delete = states.add_parser("delete", help="remove an entry")
    delete.add_argument("key")
    qr = states.add_parser("qr", help="the entry's QR code as a PNG at print size")
    qr.add_argument("key")
    qr.add_argument("--follow", action="store_true",
                    help="the account's permanent follow code for this entry (created once, needs the WeChat credentials)")
    qr.add_argument("--out", required=True, help="the PNG file to write")

    users = sub.add_parser("users", help="followers who authorized").add_subparsers(dest="action", required=True)
    ulist = users.add_parser("list", help="list users, newest login first")
    ulist.add_argument("--search", default="", help="openid, unionid or part of a nickname")
    ulist.add_argument("--limit", type=digits_arg, default=50)
    ulist.add_argument("--skip", type=digits_arg, default=0)
    show = users.add_parser("show", help="one user's record")
    show.add_argument("openid")

    menu = sub.add_parser("menu", help="the custom menu").add_subparsers(dest="action", required=True)
    mshow = menu.add_parser("show", help="the menu WeChat currently has")
    mshow.add_argument("--saved", action="store_true", help="show the saved menu instead (the one /admin/menu edits)")
    publish = menu.add_parser("publish", help="publish a menu JSON file (default: the saved menu)")
    publish.add_argument("file", nargs="?")
    msave = menu.add_parser("save", help="save a menu JSON file without publishing it")
    msave.add_argument("file")

    audit = sub.add_parser("audit", help="recent admin changes")
    audit.add_argument("--limit", type=digits_arg, default=30)

    replies = sub.add_parser("replies", help="welcome text and default reply").add_subparsers(dest="action", required=True)
    replies.add_parser("show")
    rset = replies.add_parser("set", help="{links} and {keywords} are filled in")
    rset.add_argument("name", choices=["welcome", "default_reply"])
    rset.add_argument("text")


def run(config, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(config, args))
    except EntryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code


@contextlib.asynccontextmanager
async def open_store(config):
    """The server's store: the running embedded server if there is one, else a fresh one on the same files."""
    embedded = None
    uri = config.mongodb_uri or running_uri(config.data_dir)
    if uri is None:
        embedded = EmbeddedMongo(config.data_dir)
        uri = await asyncio.to_thread(embedded.start)
    client = make_client(uri)
    try:
        store = Store(client, config.db_name)
        await store.ensure_indexes()
        yield store
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


async def _run(config, args) -> int:
    async with open_store(config) as store:
        handler = COMMANDS[(args.command, getattr(args, "action", None))]
        return await handler(config, store, args)


def _print_json(doc) -> None:
    # json escapes C0 controls itself; safe() also catches DEL, C1 and bidi overrides.
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
    print("\n".join(safe(line) for line in text.split("\n")))


async def states_list(config, store, args) -> int:
    for doc in await store.list_states():
        entry = Entry.from_doc(doc)
        print(row(entry.key, entry.page, entry.scope, entry.title, ",".join(entry.keywords)))
    return 0


async def states_set(config, store, args) -> int:
    entry = validate_entry(args.key, args.page, args.title, args.keywords, args.scope,
                           config.allowed_hosts, config.app_host)
    others = [Entry.from_doc(d) for d in await store.list_states()]
    clash = keyword_conflicts(entry, others)
    if clash:
        raise EntryError("keywords", f"already used by another entry: {', '.join(clash)}")
    before = await store.set_state(entry.key, entry.fields(), by=CLI_USER)
    print(f"{'changed' if before else 'added'} {entry.key} -> {entry.page}")
    return 0


async def states_delete(config, store, args) -> int:
    if await store.delete_state(args.key, by=CLI_USER) is None:
        raise CommandError(f"no entry {args.key!r}", code=1)
    print(f"deleted {args.key}")
    return 0


async def states_qr(config, store, args) -> int:
    from server.entrycodes import EntryCodes
    from server.menu import cli_menu_service
    from server.wechat.client import WeChatError, WeChatUnavailable

    if await store.get_state(args.key) is None:
        raise CommandError(f"no entry {args.key!r}", code=1)
    if args.follow:
        async with cli_menu_service(config, store) as menus:
            try:
                png = await EntryCodes(config, store, menus.wechat, menus.tokens).follow_png(args.key)
            except (WeChatError, WeChatUnavailable) as exc:
                raise CommandError(f"WeChat did not create the code: {exc}", code=1) from None
    else:
        png = EntryCodes(config, store, None, None).link_png(args.key)
    try:
        with open(args.out, "wb") as fh:
            fh.write(png)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    what = "follow code" if args.follow else f"link code of {config.app_host}/wx/go/{args.key}"
    print(f"wrote the {what} to {args.out}")
    return 0


async def users_list(config, store, args) -> int:
    for user in await store.find_users(args.search, skip=max(0, args.skip), limit=min(max(1, args.limit), 1000)):
        print(row(user.get("openid"), user.get("nickname", ""), user.get("scope", ""),
                  "subscribed" if user.get("subscribed") else "-", user.get("last_login_at", "")))
    return 0


async def users_show(config, store, args) -> int:
    user = await store.get_user(args.openid)
    if user is None:
        raise CommandError(f"no user {args.openid!r}", code=1)
    user.pop("_id", None)
    user.pop("web_token", None)  # sealed tokens are of no use on a terminal
    _print_json(user)
    return 0


async def audit_list(config, store, args) -> int:
    for doc in await store.recent_audit(args.limit):
        print(row(f"{doc['at']:%Y-%m-%d %H:%M:%S}", doc["who"], doc["action"], doc["target"]))
    return 0


async def replies_show(config, store, args) -> int:
    _print_json(await store.get_settings())
    return 0


async def replies_set(config, store, args) -> int:
    text = args.text.strip()
    if not text or len(text) > 600:
        raise CommandError("the text must be 1-600 characters (WeChat shows text replies up to about 2048 bytes)")
    await store.set_setting(args.name, text, by=CLI_USER)
    print(f"{args.name} saved")
    return 0


async def menu_show(config, store, args) -> int:
    from server.menu import menu_show as show

    return await show(config, store, args)


async def menu_publish(config, store, args) -> int:
    from server.menu import menu_publish as publish

    return await publish(config, store, args)


async def menu_save(config, store, args) -> int:
    from server.menu import menu_save as save

    return await save(config, store, args)


COMMANDS = {
    ("states", "list"): states_list,
    ("states", "set"): states_set,
    ("states", "delete"): states_delete,
    ("states", "qr"): states_qr,
    ("users", "list"): users_list,
    ("users", "show"): users_show,
    ("menu", "show"): menu_show,
    ("menu", "publish"): menu_publish,
    ("menu", "save"): menu_save,
    ("audit", None): audit_list,
    ("replies", "show"): replies_show,
    ("replies", "set"): replies_set,
}
