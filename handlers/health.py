"""/healthz (the process is alive) and /readyz (MongoDB answers within 1 s)."""

from __future__ import annotations

from handlers.base import BaseHandler


class HealthzHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n")


class ReadyzHandler(BaseHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if await self.store.ping(timeout=1.0):
            self.finish("ready\n")
        else:
            self.set_status(503)
            self.finish("not ready: MongoDB did not answer within 1 s\n")


default_handlers = [
    (r"/healthz", HealthzHandler),
    (r"/readyz", ReadyzHandler),
]
