"""The stand-in's JS-SDK: a jweixin-1.6.0.js for pages, and the endpoint its wx.config asks (§9, §15)."""

import os
import re

import tornado.web

from wxconfig import JSSDK_PATH

from .base import SandboxHandler

_STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
VERIFY_PATH = "/js/verify"


class VerifyHandler(SandboxHandler):
    """POST /js/verify {appId, url, timestamp, nonceStr, signature} -> {errMsg}.

    WeChat's client checks wx.config natively; the stand-in's script cannot know the ticket, so it
    asks here. The page is on the app's origin and this is another port: CORS for exactly that
    origin (the server_url), with the preflight a JSON body needs.
    """

    def set_default_headers(self) -> None:
        super().set_default_headers()
        origin = self.request.headers.get("Origin")
        server = (self.sandbox.server_url or "").rstrip("/")
        if origin and server and origin == server:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Methods", "POST")
            self.set_header("Access-Control-Allow-Headers", "Content-Type")
            self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Vary", "Origin")

    def options(self) -> None:
        self.set_status(204)
        self.finish()

    def post(self) -> None:
        body = self.json_body()
        self.sandbox.calls[VERIFY_PATH] += 1
        fields = [body.get(name) for name in ("appId", "url", "timestamp", "nonceStr", "signature")]
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) for v in fields):
            self.write_json({"errMsg": "config:fail, missing appId, url, timestamp, nonceStr or signature"})
            return
        self.write_json({"errMsg": self.sandbox.check_js_config(*(str(v) for v in fields))})


# Where WeChat serves its script (§15.6); the file is static/jweixin-1.6.0.js.
_SCRIPT_DIR, _SCRIPT = JSSDK_PATH.rsplit("/", 1)

default_handlers = [
    (f"{_SCRIPT_DIR}/({re.escape(_SCRIPT)})", tornado.web.StaticFileHandler, {"path": _STATIC}),
    (VERIFY_PATH, VerifyHandler),
]
