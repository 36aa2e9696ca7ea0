"""/wx: the server URL WeChat calls: GET verification, POST messages and events."""

from __future__ import annotations

import logging

import tornado.web

from handlers.base import BaseHandler
from server.messaging import Delivery, Rejected
from server.wechat.messages import MAX_BODY

log = logging.getLogger("wxauth.messages")


@tornado.web.stream_request_body
class WxHandler(BaseHandler):
    def initialize(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_big = False

    def prepare(self) -> None:
        if self.request.method != "POST":
            return
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            self._refuse(Rejected(413, "body over 64 KiB"))
            return
        # A chunked body is counted as it streams in; past the cap the connection is dropped,
        # instead of Tornado buffering up to its 100 MB default.
        self.request.connection.set_max_body_size(MAX_BODY + 1)

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_BODY:
            self._too_big = True
        else:
            self._chunks.append(chunk)

    def check_xsrf_cookie(self) -> None:
        """WeChat cannot send an xsrf token; the signature authenticates these requests."""

    def get(self) -> None:
        try:
            self.services.messages.verify_echo(self.get_query_argument("signature", None),
                                               self.get_query_argument("timestamp", None),
                                               self.get_query_argument("nonce", None))
        except Rejected as exc:
            self._refuse(exc)
            return
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        # The console expects the echostr back exactly (wechat-protocol.md §1).
        self.finish(self.get_query_argument("echostr", ""))

    async def post(self) -> None:
        if self._too_big:
            self._refuse(Rejected(413, "body over 64 KiB"))
            return
        delivery = Delivery(
            signature=self.get_query_argument("signature", None),
            timestamp=self.get_query_argument("timestamp", None),
            nonce=self.get_query_argument("nonce", None),
            encrypt_type=self.get_query_argument("encrypt_type", None),
            msg_signature=self.get_query_argument("msg_signature", None),
            body=b"".join(self._chunks),
        )
        try:
            body = await self.services.messages.handle(delivery)
        except Rejected as exc:
            self._refuse(exc)
            return
        self.set_header("Content-Type", "application/xml; charset=utf-8" if body.startswith("<") else "text/plain; charset=utf-8")
        self.finish(body)

    def _refuse(self, exc: Rejected) -> None:
        log.warning("refused %s /wx from %s: %s", self.request.method, self.request.remote_ip, exc.reason)
        self.set_status(exc.status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(exc.reason)


default_handlers = [
    (r"/wx/?", WxHandler),
]
