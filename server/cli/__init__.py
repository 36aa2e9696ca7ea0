"""The management commands (states, stats, users, followers, notify, menu, audit, replies, admins): the admin pages' operations for scripts.

One module per command group; each has `add_parser(sub)` and `COMMANDS`, joined here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.cli import admins, audit, followers, menu, notify, replies, states, stats, users
from server.cli.base import EXIT_BAD_INPUT, CommandError, open_store, say
from server.i18n import T
from server.statemap import EntryError

GROUPS = (states, stats, users, followers, notify, menu, audit, replies, admins)
COMMANDS = {name: handler for group in GROUPS for name, handler in group.COMMANDS.items()}


def add_commands(sub) -> None:
    for group in GROUPS:
        group.add_parser(sub)


def run(config, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(config, args))
    except EntryError as exc:
        print(say(T("error: %(text)s", text=say(exc))), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CommandError as exc:
        print(say(T("error: %(text)s", text=say(exc))), file=sys.stderr)
        for line in exc.details:
            print("  " + say(line), file=sys.stderr)
        return exc.code


async def _run(config, args) -> int:
    from server.runtime import command_services

    async with open_store(config) as store, command_services(config, store) as services:
        handler = COMMANDS[(args.command, getattr(args, "action", None))]
        return await handler(services, args)
