"""/wx: the server URL WeChat calls: GET verification, POST messages and events."""

from __future__ import annotations

import logging

from handlers.base import BaseHandler
from server.messaging import Delivery, Rejected

log = logging.getLogger("wxauth.messages")


class WxHandler(BaseHandler):
    """Bodies are bounded by the server's max_body_size (server/serve.py); MessageService refuses
    anything over 64 KiB with 413. Buffering a small body costs less than streaming it."""

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
        # The console expects the echostr back exactly (docs/wechat-protocol.md §1).
        self.finish(self.get_query_argument("echostr", ""))

    async def post(self) -> None:
        delivery = Delivery(
            signature=self.get_query_argument("signature", None),
            timestamp=self.get_query_argument("timestamp", None),
            nonce=self.get_query_argument("nonce", None),
            encrypt_type=self.get_query_argument("encrypt_type", None),
            msg_signature=self.get_query_argument("msg_signature", None),
            body=self.request.body,
        )
        try:
            body = await self.services.messages.handle(delivery)
        except Rejected as exc:
            self._refuse(exc)
            return
        self.set_header("Content-Type", "application/xml; charset=utf-8" if body.startswith("<") else "text/plain; charset=utf-8")
        self.finish(body)

    def _refuse(self, exc: Rejected) -> None:
        # One line per kind and minute: forged or replayed traffic must not flood the log.
        self.services.messages.ratelog.warning(exc.kind, "refused %s /wx from %s: %s", self.request.method,
                                               self.request.remote_ip, exc.reason)
        if self.services.metrics:
            self.services.metrics.refused(exc.kind)
        self.set_status(exc.status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(exc.reason)


default_handlers = [
    (r"/wx/?", WxHandler),
]
