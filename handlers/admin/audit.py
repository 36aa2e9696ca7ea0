"""/admin/audit: the most recent admin changes, with before and after."""

from __future__ import annotations

from handlers.admin.base import AdminHandler

AUDIT_SHOWN = 200


class AuditHandler(AdminHandler):
    nav = "audit"

    async def get(self) -> None:
        self.render("admin/audit.html", items=await self.store.recent_audit(AUDIT_SHOWN))


default_handlers = [(r"/admin/audit", AuditHandler)]
