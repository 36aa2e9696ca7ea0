"""`replies show|set`: the welcome text and the default reply."""

from __future__ import annotations

from server.cli.base import CLI_USER, CommandError, print_json
from server.replytexts import MAX_CHARS, NAMES


def add_parser(sub) -> None:
    replies = sub.add_parser("replies", help="welcome text and default reply").add_subparsers(dest="action", required=True)
    replies.add_parser("show")
    rset = replies.add_parser("set", help="{links} and {keywords} are filled in")
    rset.add_argument("name", choices=list(NAMES))
    rset.add_argument("text")


async def replies_show(services, args) -> int:
    print_json(await services.store.get_settings())
    return 0


async def replies_set(services, args) -> int:
    text = args.text.strip()
    if not text:
        # The admin page's empty field means "the default"; a command that saves nothing is a mistake.
        raise CommandError(f"the text must be 1-{MAX_CHARS} characters (WeChat shows text replies up to about 2048 bytes)")
    errors = await services.reply_texts.save({args.name: text}, by=CLI_USER)
    if errors:
        raise CommandError(f"the text must be 1-{MAX_CHARS} characters: {errors[args.name]}")
    print(f"{args.name} saved")
    return 0


COMMANDS = {("replies", "show"): replies_show, ("replies", "set"): replies_set}
