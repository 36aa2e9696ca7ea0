"""What every command shares: its errors, its name in the audit log, the store it opens, JSON output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json

from server import i18n
from server.embedded import EmbeddedMongo, running_uri
from server.i18n import T
from server.store import Store, make_client
from server.terminal import digits, safe

EXIT_BAD_INPUT = 2
CLI_USER = "cli"  # who the audit log names for a change made from the command line


@functools.cache
def locale():
    """The terminal's language (LC_ALL / LC_MESSAGES / LANG; Chinese when unset or C), read once."""
    return i18n.command_locale()


def say(value) -> str:
    """A Text (or an exception raised with one) in the terminal's language; other values as they are."""
    return i18n.say(value, locale())


def digits_arg(raw: str) -> int:
    """argparse type= for counts: ASCII digits only, with a message naming the rule."""
    value = digits(raw)
    if value is None:
        raise argparse.ArgumentTypeError(say(T("must be a whole number of ASCII digits 0-9, got %(raw)s", raw=repr(raw))))
    return value


# argparse's own words (usage, -h, its errors), which it looks up through gettext as it prints them;
# listed here so that locale/zh_CN.csv has each (Tornado's CSV loader strips the spaces around them).
ARGPARSE_TEXTS = (
    T("usage:"), T("positional arguments"), T("options"), T("show this help message and exit"),
    T("%(prog)s: error: %(message)s"), T("argument %(argument_name)s: %(message)s"),
    T("the following arguments are required: %s"), T("unrecognized arguments: %s"),
    T("invalid choice: %(value)r (choose from %(choices)s)"), T("invalid %(type)s value: %(value)r"),
    T("expected one argument"), T("expected at least one argument"), T("not allowed with argument %s"),
    T("one of the arguments %s is required"), T("ambiguous option: %(option)s could match %(matches)s"),
)


def _argparse_gettext(message: str) -> str:
    core = message.strip()
    translated = locale().translate(core)
    if not core or translated == core:
        return message
    start = message.index(core)
    return message[:start] + translated + message[start + len(core):]


def speak_argparse() -> None:
    """argparse's usage, help headings and errors in the terminal's language (this process's parsers)."""
    argparse._ = _argparse_gettext


class CommandError(Exception):
    """A command that cannot do what was asked: the message (a Text) goes to stderr, `code` is the exit code."""

    def __init__(self, message, code: int = EXIT_BAD_INPUT, details=()):
        super().__init__(message)
        self.code = code
        self.details = list(details)  # lines printed indented under the message (each a Text or a string)


@contextlib.asynccontextmanager
async def open_store(config):
    """The server's store: the running embedded server if there is one, else a fresh one on the same files."""
    embedded = None
    uri = config.mongodb_uri or running_uri(config.data_dir)
    if uri is None:
        embedded = EmbeddedMongo(config.data_dir)
        uri = await asyncio.to_thread(embedded.start)
    client = make_client(uri)
    try:
        store = Store(client, config.db_name)
        await store.ensure_indexes()
        yield store
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


def print_json(doc) -> None:
    # json escapes C0 controls itself; safe() also catches DEL, C1 and bidi overrides.
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
    print("\n".join(safe(line) for line in text.split("\n")))
