"""For comparison only: the classic tutorials' callback, blocking `requests.get` inside a Tornado handler."""

# STYLE.md lists this under "don't copy": every exchange stalls the whole event loop, so
# callbacks are served one after another however many arrive at once.

from __future__ import annotations

import os

import requests
import tornado.web

from bench.tinyapp import main

TARGET = "/wx/page/bind"


class HealthzHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish("ok\n")


class WxAuthorHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        code = self.get_query_argument("code", "")
        # Exactly the tutorials' shape: no session, no pool, blocking I/O on the event loop.
        answer = requests.get(self.settings["api_base"] + "/sns/oauth2/access_token", params={
            "appid": os.environ["WX_APPID"], "secret": os.environ["WX_APPSECRET"], "code": code,
            "grant_type": "authorization_code"}, timeout=5).json()
        if "openid" not in answer:
            self.set_status(502)
            self.finish("exchange failed")
            return
        self.set_cookie("openid", answer["openid"], httponly=True)
        self.redirect(TARGET)


def make_app() -> tornado.web.Application:
    return tornado.web.Application([(r"/healthz", HealthzHandler), (r"/wx/page/wxauthor", WxAuthorHandler)],
                                   api_base=os.environ["WX_API_BASE"])


if __name__ == "__main__":
    main("python -m bench.blocking_app", make_app)
