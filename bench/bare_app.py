"""The floor of the messages benchmark: a bare Tornado handler that answers every request with `hello`."""

from __future__ import annotations

import argparse
import asyncio
import signal

import tornado.web


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("hello")

    def post(self) -> None:
        self.finish("hello")


async def serve(port: int) -> None:
    app = tornado.web.Application([(r"/.*", HelloHandler)])
    server = app.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
