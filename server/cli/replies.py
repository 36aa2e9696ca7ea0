"""`replies show|set`: the welcome text and the default reply."""

from __future__ import annotations

from server.cli.base import CLI_USER, CommandError, print_json, say
from server.i18n import T
from server.replytexts import MAX_CHARS, NAMES


def add_parser(sub) -> None:
    replies = sub.add_parser("replies", help=say(T("welcome text and default reply"))).add_subparsers(dest="action", required=True)
    replies.add_parser("show", help=say(T("the saved texts, as JSON")))
    rset = replies.add_parser("set", help=say(T("{links} and {keywords} are filled in")))
    rset.add_argument("name", choices=list(NAMES))
    rset.add_argument("text")


async def replies_show(services, args) -> int:
    print_json(await services.store.get_settings())
    return 0


async def replies_set(services, args) -> int:
    text = args.text.strip()
    if not text:
        # The admin page's empty field means "the default"; a command that saves nothing is a mistake.
        raise CommandError(T("the text must be 1-%(max)s characters (WeChat shows text replies up to about 2048 bytes)",
                             max=MAX_CHARS))
    errors = await services.reply_texts.save({args.name: text}, by=CLI_USER)
    if errors:
        raise CommandError(T("the text must be 1-%(max)s characters: %(reason)s", max=MAX_CHARS,
                             reason=say(errors[args.name])))
    print(say(T("%(name)s saved", name=args.name)))
    return 0


COMMANDS = {("replies", "show"): replies_show, ("replies", "set"): replies_set}
