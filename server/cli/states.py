"""`states list|set|delete|qr`: the state→page map from the command line."""

from __future__ import annotations

from server.cli.base import CLI_USER, CommandError, say
from server.i18n import T
from server.terminal import row
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure


def add_parser(sub) -> None:
    states = sub.add_parser("states", help=say(T("the state→page map"))).add_subparsers(dest="action", required=True)
    states.add_parser("list", help=say(T("list map entries")))
    set_ = states.add_parser("set", help=say(T("add or change an entry")))
    set_.add_argument("key")
    set_.add_argument("page")
    set_.add_argument("--title", default="")
    set_.add_argument("--keywords", default="", help=say(T("comma-separated, e.g. grades,score")))
    set_.add_argument("--scope", default="snsapi_base",
                      help=say(T("snsapi_base (silent) or snsapi_userinfo (asks for profile)")))
    delete = states.add_parser("delete", help=say(T("remove an entry")))
    delete.add_argument("key")
    qr = states.add_parser("qr", help=say(T("the entry's QR code as a PNG at print size")))
    qr.add_argument("key")
    qr.add_argument("--follow", action="store_true",
                    help=say(T("the account's permanent follow code for this entry (created once, needs the WeChat "
                               "credentials)")))
    qr.add_argument("--out", required=True, help=say(T("the PNG file to write")))


async def states_list(services, args) -> int:
    for entry, _ in await services.state_entries.rows():
        print(row(entry.key, entry.page, entry.scope, entry.title, ",".join(entry.keywords)))
    return 0


async def states_set(services, args) -> int:
    values = {"key": args.key, "page": args.page, "title": args.title, "keywords": args.keywords, "scope": args.scope}
    entry, before = await services.state_entries.put(values, by=CLI_USER)
    if before:
        print(say(T("changed %(key)s -> %(page)s", key=entry.key, page=entry.page)))
    else:
        print(say(T("added %(key)s -> %(page)s", key=entry.key, page=entry.page)))
    return 0


async def states_delete(services, args) -> int:
    if not await services.state_entries.delete(args.key, by=CLI_USER):
        raise CommandError(T("no entry %(key)s", key=repr(args.key)), code=1)
    print(say(T("deleted %(key)s", key=args.key)))
    return 0


async def states_qr(services, args) -> int:
    if await services.state_entries.get(args.key) is None:
        raise CommandError(T("no entry %(key)s", key=repr(args.key)), code=1)
    codes = services.entry_codes
    if args.follow:
        try:
            png = await codes.follow_png(args.key)
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(T("WeChat did not create the code: %(reason)s", reason=describe_failure(exc)),
                               code=1) from None
    else:
        png = codes.link_png(args.key)
    try:
        with open(args.out, "wb") as fh:
            fh.write(png)
    except OSError as exc:
        raise CommandError(T("cannot write %(path)s: %(reason)s", path=args.out, reason=exc.strerror)) from None
    if args.follow:
        print(say(T("wrote the follow code to %(path)s", path=args.out)))
    else:
        print(say(T("wrote the link code of %(url)s to %(path)s", url=codes.link_url(args.key), path=args.out)))
    return 0


COMMANDS = {
    ("states", "list"): states_list,
    ("states", "set"): states_set,
    ("states", "delete"): states_delete,
    ("states", "qr"): states_qr,
}
