"""`admins add|list|role|disable|reinvite`: named admin accounts; `add` and `reinvite` print a one-time invitation link."""

from __future__ import annotations

from server.admins import INVITE_SECONDS, AdminError
from server.cli.base import CLI_USER, CommandError, say
from server.i18n import T
from server.logtags import short_openid
from server.roles import ROLES
from server.terminal import row


def add_parser(sub) -> None:
    admins = sub.add_parser("admins", help=say(T("admin accounts and their roles"))).add_subparsers(dest="action",
                                                                                                required=True)
    add = admins.add_parser("add", help=say(T("invite an admin: prints a link valid for 24 h, usable once")))
    add.add_argument("name", help=say(T("1-32 characters of a-z 0-9 _ . -")))
    add.add_argument("--role", choices=ROLES, required=True)
    admins.add_parser("list", help=say(T("every admin, with role and status")))
    role = admins.add_parser("role", help=say(T("change an admin's role (at once, in every session)")))
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    disable = admins.add_parser("disable", help=say(T("disable an admin and end their sessions")))
    disable.add_argument("name")
    reinvite = admins.add_parser("reinvite", help=say(T("a new invitation link for an existing admin (a forgotten "
                                                        "password, or a disabled admin let back in)")))
    reinvite.add_argument("name")


async def admins_add(services, args) -> int:
    try:
        token = await services.admins.invite(args.name, args.role, by=CLI_USER)
    except AdminError as exc:
        raise CommandError(say(exc)) from None
    print(say(T("invited %(name)s as %(role)s; this link works once, for %(hours)s hours:", name=args.name,
                role=args.role, hours=INVITE_SECONDS // 3600)))
    print(services.admins.invite_url(token))
    return 0


async def admins_list(services, args) -> int:
    for doc in await services.admins.all():
        print(row(doc["_id"], doc.get("role"), doc.get("status"),
                  short_openid(doc["wechat_openid"]) if doc.get("wechat_openid") else "-",
                  "WX_ADMIN_PASSWORD" if doc.get("bootstrap") else ""))
    return 0


async def admins_role(services, args) -> int:
    try:
        await services.admins.set_role(args.name, args.role, by=CLI_USER)
    except AdminError as exc:
        raise CommandError(say(exc)) from None
    print(say(T("%(name)s is now %(role)s", name=args.name, role=args.role)))
    return 0


async def admins_disable(services, args) -> int:
    try:
        await services.admins.disable(args.name, by=CLI_USER)
    except AdminError as exc:
        raise CommandError(say(exc)) from None
    print(say(T("%(name)s disabled; their sessions have ended", name=args.name)))
    return 0


async def admins_reinvite(services, args) -> int:
    try:
        token = await services.admins.reinvite(args.name, by=CLI_USER)
    except AdminError as exc:
        raise CommandError(say(exc)) from None
    print(say(T("%(name)s must set a new password (their sessions have ended); this link works once, for %(hours)s "
                "hours:", name=args.name, hours=INVITE_SECONDS // 3600)))
    print(services.admins.invite_url(token))
    return 0


COMMANDS = {("admins", "add"): admins_add, ("admins", "list"): admins_list, ("admins", "role"): admins_role,
            ("admins", "disable"): admins_disable, ("admins", "reinvite"): admins_reinvite}
