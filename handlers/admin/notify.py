"""/admin/notify: a template message carrying an entry's link, previewed, sent as a job with live progress."""

from __future__ import annotations

import json
import re

import tornado.web

from handlers.admin.base import AdminHandler
from server.i18n import T
from server.notify import NotifyInvalid
from server.statemap import Entry
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure
from server.wechat.templates import check_data, preview

JOB_PATTERN = r"(notify:[0-9a-f]{12})"
MAX_OPENIDS_TEXT = 300_000  # characters of the openid box (10,000 openids)
MAX_KEYS = 20               # template fields read from a form (a template has a handful)


class NotifyHandler(AdminHandler):
    nav = "notify"

    async def get(self) -> None:
        await self.render_page(self.form(), {}, notice=self._notice())

    def _notice(self) -> str | None:
        job = self.get_query_argument("job", None)
        if job and re.fullmatch(JOB_PATTERN, job):
            return self.say(T("Sending started: %(job)s", job=job))
        return None

    def form(self) -> dict:
        """The form as posted (or, choosing a template, as linked): template values are v_<key>."""
        post = self.request.method == "POST"
        names = self.request.body_arguments if post else self.request.query_arguments
        arg = self.get_body_argument if post else self.get_query_argument
        keys = [n for n in names if n.startswith("v_") and len(n) <= 40][:MAX_KEYS]
        return {"template": arg("template", ""), "entry": arg("entry", ""), "target": arg("target", "all"),
                "tag": arg("tag", "").strip(), "openids": arg("openids", "")[:MAX_OPENIDS_TEXT],
                "values": {n[2:]: arg(n, "").strip() for n in keys}}

    async def render_page(self, form: dict, errors: dict, notice: str | None = None, problem: str | None = None,
                          shown: str | None = None) -> None:
        templates, wechat_error = [], None
        try:
            templates = await self.services.notifications.templates()
        except (WeChatError, WeChatUnavailable) as exc:
            wechat_error = describe_failure(exc)
        chosen = next((t for t in templates if t["template_id"] == form["template"]), None)
        entries = [Entry.from_doc(doc) for doc in await self.store.list_states()]
        self.render("admin/notify.html", form=form, errors=errors, templates=templates, chosen=chosen,
                    entries=entries, jobs=await self.services.notifications.recent(), wechat_error=wechat_error,
                    notice=notice, problem=problem, shown=shown)

    async def post(self) -> None:
        form = self.form()
        action = self.get_body_argument("action", "preview")
        target = ({"all": True} if form["target"] == "all" else {"tag": form["tag"]} if form["target"] == "tag"
                  else {"to": form["openids"].replace(",", " ").split()})
        if action == "preview":
            templates = await self._templates_or_none()
            chosen = next((t for t in templates or [] if t["template_id"] == form["template"]), None)
            if chosen is None:
                self.set_status(400)
                await self.render_page(form, {"template": T("Choose a template")})
                return
            errors = check_data(chosen.get("content", ""), form["values"])
            self.set_status(400 if errors else 200)
            await self.render_page(form, errors, shown=preview(chosen.get("content", ""), form["values"]),
                                   notice=None if errors else self.say(T("This is a preview; nothing was sent.")))
            return
        try:
            job_id = await self.services.notifications.create(form["template"], form["entry"], form["values"], target,
                                                              by=self.who)
        except NotifyInvalid as exc:
            self.set_status(400)
            await self.render_page(form, exc.problems, problem=self.say(T("Nothing was sent: see the marks below.")))
            return
        except (WeChatError, WeChatUnavailable) as exc:
            self.set_status(502)
            await self.render_page(form, {}, problem=self.say(describe_failure(exc)))
            return
        self.services.notifications.start_background(job_id)
        self.see_other(f"/admin/notify?job={job_id}#jobs")

    async def _templates_or_none(self):
        try:
            return await self.services.notifications.templates()
        except (WeChatError, WeChatUnavailable):
            return None


class NotifyJobHandler(AdminHandler):
    """GET: one job's progress as JSON (the live bar)."""

    nav = "notify"

    async def get(self, job_id: str) -> None:
        progress = await self.services.notifications.progress(job_id, with_deliveries=True)
        if not progress:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(progress))


class NotifyCancelHandler(AdminHandler):
    nav = "notify"

    async def post(self, job_id: str) -> None:
        await self.services.notifications.cancel(job_id)  # a finished job stays as it is
        self.see_other("/admin/notify#jobs")


default_handlers = [
    (r"/admin/notify", NotifyHandler),
    (rf"/admin/notify/jobs/{JOB_PATTERN}", NotifyJobHandler),
    (rf"/admin/notify/jobs/{JOB_PATTERN}/cancel", NotifyCancelHandler),
]
