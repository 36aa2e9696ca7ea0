"""`stats [KEY]`: each entry's funnel over 30 days, or one entry's day by day."""

from __future__ import annotations

from server.cli.base import CommandError, say
from server.funnel import DAYS, STAGES
from server.i18n import T
from server.terminal import row

# The columns' headings; in English they are the funnel's stage names, as before.
HEADINGS = {"shown": T("shown"), "tap": T("tap"), "authorized": T("authorized"), "landed": T("landed"),
            "cancelled": T("cancelled"), "cookies": T("cookies"), "wechat_error": T("wechat_error"),
            "snapshot": T("snapshot"), "other_failure": T("other_failure")}


def add_parser(sub) -> None:
    stats = sub.add_parser("stats", help=say(T("links shown, taps, sign-ins, landings and failures per entry (30 days)")))
    stats.add_argument("key", nargs="?", help=say(T("one entry, day by day")))


def _headings() -> list[str]:
    return [say(HEADINGS.get(stage, stage)) for stage in STAGES]


async def stats(services, args) -> int:
    funnel = services.funnel
    if args.key:
        if await services.state_entries.get(args.key) is None:
            raise CommandError(T("no entry %(key)s", key=repr(args.key)), code=1)
        print(row(say(T("day")), *_headings()))
        for day, counts in await funnel.daily(args.key):
            print(row(day.isoformat(), *(counts[s] for s in STAGES)))
        return 0
    totals = await funnel.totals(DAYS)
    print(row(say(T("entry")), *_headings(), say(T("landed/shown"))))
    for entry, _ in await services.state_entries.rows():
        counts = totals.get(entry.key) or dict.fromkeys(STAGES, 0)
        shown = counts["shown"]
        rate = f"{counts['landed'] / shown:.0%}" if shown else "-"
        print(row(entry.key, *(counts[s] for s in STAGES), rate))
    return 0


COMMANDS = {("stats", None): stats}
