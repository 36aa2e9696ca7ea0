"""`audit`: recent admin changes, from the pages and from commands."""

from __future__ import annotations

from server.cli.base import digits_arg, say
from server.i18n import T
from server.terminal import row


def add_parser(sub) -> None:
    audit = sub.add_parser("audit", help=say(T("recent admin changes")))
    audit.add_argument("--limit", type=digits_arg, default=30)


async def audit_list(services, args) -> int:
    for doc in await services.store.recent_audit(args.limit):
        print(row(f"{doc['at']:%Y-%m-%d %H:%M:%S}", doc["who"], doc["action"], doc["target"]))
    return 0


COMMANDS = {("audit", None): audit_list}
