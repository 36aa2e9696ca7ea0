"""Runs a comparison app of the benchmarks (bare, blocking) on a port until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal

import tornado.web


async def serve(app: tornado.web.Application, port: int) -> None:
    server = app.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


def main(prog: str, make_app) -> None:
    """`python -m bench.NAME --port N`: builds the app inside the loop, serves until stopped."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port

    async def run() -> None:
        await serve(make_app(), port)

    asyncio.run(run())
