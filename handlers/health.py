"""/healthz (the process is alive), /readyz (MongoDB answers within 1 s) and /metrics (Prometheus)."""

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


class MetricsHandler(BaseHandler):
    """Prometheus text format. Keep it off the public internet (see README, Deploy)."""

    def get(self) -> None:
        from server.metrics import exposition

        body, content_type = exposition()
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


default_handlers = [
    (r"/metrics", MetricsHandler),
    (r"/healthz", HealthzHandler),
    (r"/readyz", ReadyzHandler),
]
