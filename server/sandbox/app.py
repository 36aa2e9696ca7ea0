"""Builds and serves the sandbox application: a stand-in WeChat on its own port."""

import asyncio
import logging
import os

import tornado.httpserver
import tornado.netutil
import tornado.web

from . import api, chat, control, jssdk, notices, oauth, users
from .state import Sandbox

log = logging.getLogger("wxauth.sandbox")
access_log = logging.getLogger("tornado.access")

_HERE = os.path.dirname(os.path.abspath(__file__))


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log without the query string: secret, code and tokens ride there."""
    status = handler.get_status()
    if status < 400:
        write = access_log.info
    elif status < 500 or status == 502:  # 502: an injected fault, not a sandbox bug
        write = access_log.warning
    else:
        write = access_log.error
    write("%d %s %s %.2fms", status, handler.request.method, handler.request.path,
          1000.0 * handler.request.request_time())


def make_sandbox_app(sandbox: Sandbox) -> tornado.web.Application:
    """The stand-in WeChat: authorize page, sns/ and cgi-bin/ APIs, JS-SDK, chat page, control API."""
    handlers = (oauth.default_handlers + api.default_handlers + users.default_handlers + notices.default_handlers
                + jssdk.default_handlers + chat.default_handlers
                + control.default_handlers)
    return tornado.web.Application(
        handlers,
        sandbox=sandbox,
        template_path=os.path.join(_HERE, "templates"),
        static_path=os.path.join(_HERE, "static"),
        # Nothing here is secret; the follower cookie only picks a demo user.
        xsrf_cookies=False,
        log_function=log_request,
    )


async def start_sandbox(sandbox: Sandbox, port: int = 0,
                        address: str = "127.0.0.1") -> tuple[tornado.httpserver.HTTPServer, int]:
    """Serve the sandbox on address:port (port 0: a free one); returns (server, port)."""
    sockets = tornado.netutil.bind_sockets(port, address)
    server = tornado.httpserver.HTTPServer(make_sandbox_app(sandbox))
    server.add_sockets(sockets)
    server.wx_sandbox = sandbox  # stop_sandbox ends its pending pushes
    port = sockets[0].getsockname()[1]
    host = f"[{address}]" if ":" in address else address
    sandbox.base_url = f"http://{host}:{port}"
    log.info("sandbox WeChat at %s (appid %s, server %s)", sandbox.base_url, sandbox.appid,
             sandbox.server_url or "not set")
    return server, port


async def stop_sandbox(server: tornado.httpserver.HTTPServer) -> None:
    """Stop listening, end pushes still on their way (delivery events) and close every connection."""
    server.stop()
    pending = list(getattr(getattr(server, "wx_sandbox", None), "background", ()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await server.close_all_connections()
