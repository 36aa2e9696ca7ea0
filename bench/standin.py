"""Runs the WeChat stand-in (server.sandbox) alone on a port: `python -m bench.standin --port N`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import tornado.httpserver
import tornado.netutil
import tornado.web

from server.sandbox import Follower, Sandbox, make_sandbox_app, stop_sandbox


def bench_openid(i: int) -> str:
    """The openid of the i-th benchmark follower: 28 characters, like real ones."""
    return f"oBench{i:022d}"


class HealthzHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("ok\n")


class DeliveriesHandler(tornado.web.RequestHandler):
    """GET /bench/deliveries: how many template messages went out, and how many twice or more."""

    def get(self) -> None:
        counts = self.application.settings["sandbox"].template_deliveries
        self.finish({"messages": len(counts), "duplicates": sum(1 for n in counts.values() if n > 1),
                     "sends": sum(counts.values())})


async def serve(args) -> None:
    env = os.environ
    # Followers made here, not over the control API: a thousand POSTs would only slow the set-up.
    followers = [Follower(bench_openid(i), f"Bench {i}") for i in range(args.followers)]
    sandbox = Sandbox(env["WX_APPID"], env["WX_APPSECRET"], env["WX_TOKEN"], aes_key=env.get("WX_AES_KEY"),
                      server_url=args.server_url, latency=args.latency, followers=followers or None,
                      population=args.population)
    sandbox.template_events = not args.no_template_events
    app = make_sandbox_app(sandbox)
    # The sandbox app has no /healthz; the benchmark polls one like it does for every process.
    app.add_handlers(r".*", [(r"/healthz", HealthzHandler), (r"/bench/deliveries", DeliveriesHandler)])
    app.settings["sandbox"] = sandbox
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(tornado.netutil.bind_sockets(args.port, "127.0.0.1"))
    sandbox.base_url = f"http://127.0.0.1:{args.port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await stop_sandbox(server)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-url", default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--followers", type=int, default=0, help="this many followers instead of the demo ones")
    parser.add_argument("--population", type=int, default=0,
                        help="this many more followers in user/get and batchget only (follower sync)")
    parser.add_argument("--no-template-events", action="store_true",
                        help="do not push TEMPLATESENDJOBFINISH back (a send benchmark measures sending)")
    # Access-log lines would cost the stand-in CPU that the server under test needs.
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
