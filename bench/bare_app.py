"""The floor of the messages benchmark: a bare Tornado handler that answers every request with `hello`."""

from __future__ import annotations

import tornado.web

from bench.tinyapp import main


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("hello")

    def post(self) -> None:
        self.finish("hello")


def make_app() -> tornado.web.Application:
    return tornado.web.Application([(r"/.*", HelloHandler)])


if __name__ == "__main__":
    main("python -m bench.bare_app", make_app)
