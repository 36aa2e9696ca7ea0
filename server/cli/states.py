"""`states list|set|delete|qr`: the state→page map from the command line."""

from __future__ import annotations

from server.cli.base import CLI_USER, CommandError
from server.terminal import row
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure


def add_parser(sub) -> None:
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


async def states_list(services, args) -> int:
    for entry, _ in await services.state_entries.rows():
        print(row(entry.key, entry.page, entry.scope, entry.title, ",".join(entry.keywords)))
    return 0


async def states_set(services, args) -> int:
    values = {"key": args.key, "page": args.page, "title": args.title, "keywords": args.keywords, "scope": args.scope}
    entry, before = await services.state_entries.put(values, by=CLI_USER)
    print(f"{'changed' if before else 'added'} {entry.key} -> {entry.page}")
    return 0


async def states_delete(services, args) -> int:
    if not await services.state_entries.delete(args.key, by=CLI_USER):
        raise CommandError(f"no entry {args.key!r}", code=1)
    print(f"deleted {args.key}")
    return 0


async def states_qr(services, args) -> int:
    if await services.state_entries.get(args.key) is None:
        raise CommandError(f"no entry {args.key!r}", code=1)
    codes = services.entry_codes
    if args.follow:
        try:
            png = await codes.follow_png(args.key)
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(f"WeChat did not create the code: {describe_failure(exc)}", code=1) from None
    else:
        png = codes.link_png(args.key)
    try:
        with open(args.out, "wb") as fh:
            fh.write(png)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    what = "follow code" if args.follow else f"link code of {codes.link_url(args.key)}"
    print(f"wrote the {what} to {args.out}")
    return 0


COMMANDS = {
    ("states", "list"): states_list,
    ("states", "set"): states_set,
    ("states", "delete"): states_delete,
    ("states", "qr"): states_qr,
}
