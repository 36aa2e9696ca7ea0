"""What every command shares: its errors, its name in the audit log, the store it opens, JSON output."""

from __future__ import annotations

import asyncio
import contextlib
import json

from server.embedded import EmbeddedMongo, running_uri
from server.store import Store, make_client
from server.terminal import safe

EXIT_BAD_INPUT = 2
CLI_USER = "cli"  # who the audit log names for a change made from the command line


class CommandError(Exception):
    """A command that cannot do what was asked: the message goes to stderr, `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code


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
