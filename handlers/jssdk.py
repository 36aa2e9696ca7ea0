"""GET /wx/jsconfig?url=…: the signed wx.config fields for a page of this site (docs/wechat-protocol.md §9)."""

from __future__ import annotations

import json
import logging

from handlers.base import BaseHandler
from server.redirects import BadTarget
from server.tickets import signable_url
from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.jssdk")


class JsConfigHandler(BaseHandler):
    """Signs the URL a page holds now (static/js/share.js calls it when that is not the URL the
    server signed, §15.5), if it is on this site or an allowed host; anything else is a 400.

    Same-origin only (no CORS headers): a page on an allowed host asks through its own server.
    """

    async def get(self) -> None:
        # A signature belongs to one moment and one nonce: no cache may hand it to another page.
        self.set_header("Cache-Control", "no-store")
        # §15.1: the page may percent-encode its URL for transport; the argument arrives decoded
        # once, and that raw URL is what gets signed.
        raw = self.get_query_argument("url", None)
        if not raw:
            self.answer(400, {"error": "url: missing; send ?url= with location.href without '#'"})
            return
        try:
            url = signable_url(raw, self.config.app_host, self.config.allowed_hosts)
        except BadTarget as exc:
            self.answer(400, {"error": f"url: {exc}"})
            return
        try:
            config = await self.services.tickets.js_config(url)
        except (WeChatError, WeChatUnavailable) as exc:
            log.warning("no jsapi_ticket for wx.config: %s", exc)
            self.answer(502, {"error": "WeChat did not hand out a jsapi_ticket; try again in a moment"})
            return
        self.answer(200, config)

    def answer(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False))


default_handlers = [(r"/wx/jsconfig", JsConfigHandler)]
