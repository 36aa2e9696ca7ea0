"""`stats [KEY]`: each entry's funnel over 30 days, or one entry's day by day."""

from __future__ import annotations

from server.cli.base import CommandError
from server.funnel import DAYS, STAGES
from server.terminal import row


def add_parser(sub) -> None:
    stats = sub.add_parser("stats", help="links shown, taps, sign-ins, landings and failures per entry (30 days)")
    stats.add_argument("key", nargs="?", help="one entry, day by day")


async def stats(services, args) -> int:
    funnel = services.funnel
    if args.key:
        if await services.state_entries.get(args.key) is None:
            raise CommandError(f"no entry {args.key!r}", code=1)
        print(row("day", *STAGES))
        for day, counts in await funnel.daily(args.key):
            print(row(day.isoformat(), *(counts[s] for s in STAGES)))
        return 0
    totals = await funnel.totals(DAYS)
    print(row("entry", *STAGES, "landed/shown"))
    for entry, _ in await services.state_entries.rows():
        counts = totals.get(entry.key) or dict.fromkeys(STAGES, 0)
        shown = counts["shown"]
        rate = f"{counts['landed'] / shown:.0%}" if shown else "-"
        print(row(entry.key, *(counts[s] for s in STAGES), rate))
    return 0


COMMANDS = {("stats", None): stats}
