"""`users list|show`: followers who signed in."""

from __future__ import annotations

from server.cli.base import CommandError, digits_arg, print_json, say
from server.i18n import T
from server.terminal import row

MAX_LISTED = 1000  # one `users list` prints at most this many; page with --skip


def add_parser(sub) -> None:
    users = sub.add_parser("users", help=say(T("followers who authorized"))).add_subparsers(dest="action", required=True)
    ulist = users.add_parser("list", help=say(T("list users, newest login first")))
    ulist.add_argument("--search", default="", help=say(T("openid, unionid or part of a nickname")))
    ulist.add_argument("--limit", type=digits_arg, default=50)
    ulist.add_argument("--skip", type=digits_arg, default=0)
    show = users.add_parser("show", help=say(T("one user's record")))
    show.add_argument("openid")


async def users_list(services, args) -> int:
    found = await services.store.find_users(args.search, skip=args.skip, limit=min(max(1, args.limit), MAX_LISTED))
    subscribed = say(T("subscribed"))
    for user in found:
        print(row(user.get("openid"), user.get("nickname", ""), user.get("scope", ""),
                  subscribed if user.get("subscribed") else "-", user.get("last_login_at", "")))
    return 0


async def users_show(services, args) -> int:
    user = await services.store.get_user(args.openid)
    if user is None:
        raise CommandError(T("no user %(openid)s", openid=repr(args.openid)), code=1)
    user.pop("_id", None)
    user.pop("web_token", None)  # sealed tokens are of no use on a terminal
    print_json(user)
    return 0


COMMANDS = {("users", "list"): users_list, ("users", "show"): users_show}
