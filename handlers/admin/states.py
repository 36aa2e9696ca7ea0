"""/admin/states: the state→page map (list, add, edit, delete) and each entry's QR codes."""

from __future__ import annotations

import tornado.web

from handlers.admin.base import AdminHandler
from handlers.base import PageError
from server.charts import daily_bars, sparkline
from server.entrycodes import UnknownEntry
from server.funnel import FAILURES, conversion
from server.i18n import T
from server.state_entries import EntryChanged, version_of
from server.statekey import KEY_PATTERN, is_key
from server.statemap import Entry, EntryError
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.failures import describe_failure
from server.wechat.oauth import SCOPES

SPARK_DAYS = 14  # the state table's sparklines
_CHANGED = T("Someone else changed or deleted this entry after you opened it. Your edit is kept below; "
              "save again to replace theirs.")


class StatesFormMixin:
    def form_values(self: AdminHandler, key: str | None = None) -> dict:
        return {
            "key": key if key is not None else self.get_body_argument("key", "").strip(),
            "page": self.get_body_argument("page", "").strip(),
            "title": self.get_body_argument("title", "").strip(),
            "keywords": self.get_body_argument("keywords", "").strip(),
            "scope": self.get_body_argument("scope", "snsapi_base"),
            "version": self.get_body_argument("version", ""),
        }


class StatesHandler(StatesFormMixin, AdminHandler):
    nav = "states"

    async def get(self) -> None:
        await self.render_page(values={"scope": "snsapi_base"}, errors={}, notice=self._notice())

    def _notice(self) -> str | None:
        saved, deleted = self.get_query_argument("saved", None), self.get_query_argument("deleted", None)
        if is_key(saved):
            return self.say(T("Saved “%(key)s”: replies use it within 5 seconds.", key=saved))
        if is_key(deleted):
            return self.say(T("Deleted “%(key)s”.", key=deleted))
        return None

    async def render_page(self, values: dict, errors: dict, notice: str | None = None) -> None:
        rows = await self.services.state_entries.rows()
        daily = await self.services.funnel.daily_all(SPARK_DAYS)

        def spark(key: str, stage: str) -> dict:
            return sparkline([counts[stage] for _, counts in daily.get(key, [])] or [0] * SPARK_DAYS)

        sparks = {entry.key: {"taps": spark(entry.key, "tap"), "landed": spark(entry.key, "landed")} for entry, _ in rows}
        self.render("admin/states.html", rows=rows, sparks=sparks, values=values, errors=errors,
                    scopes=SCOPES, notice=notice, app_host=self.config.app_host,
                    link_qr=self.services.entry_codes.link_svg)

    async def post(self) -> None:
        values = self.form_values()
        try:
            entry = await self.services.state_entries.add(values, by=self.who)
        except EntryError as exc:
            self.set_status(400)
            await self.render_page(values=values, errors={exc.field: exc.message})
            return
        self.see_other(f"/admin/states?saved={entry.key}")


class StateEditHandler(StatesFormMixin, AdminHandler):
    """GET: the entry's form and its funnel; POST: saves the form (EntryChanged on a concurrent edit)."""

    nav = "states"

    async def get(self, key: str) -> None:
        doc = await self.services.state_entries.get(key)
        if doc is None:
            raise PageError(404, T("There is no entry “%(key)s”.", key=key))
        entry = Entry.from_doc(doc)
        values = {"key": key, "page": entry.page, "title": entry.title, "keywords": ", ".join(entry.keywords),
                  "scope": entry.scope, "version": version_of(doc)}
        self.render("admin/state_edit.html", values=values, errors={}, scopes=SCOPES, doc=doc, saved_now=None,
                    **await self.funnel_view(key))

    async def funnel_view(self, key: str) -> dict:
        """The entry's funnel over 30 days: the steps with their conversion, failures, daily bars."""
        daily = await self.services.funnel.daily(key)
        totals = {stage: sum(counts[stage] for _, counts in daily) for stage in daily[0][1]}
        return {"funnel_steps": conversion(totals), "funnel_failures": [(k, totals[k]) for k in FAILURES],
                "funnel_chart": daily_bars([(day, counts["landed"]) for day, counts in daily]),
                "funnel_taps": daily_bars([(day, counts["tap"]) for day, counts in daily])}

    async def post(self, key: str) -> None:
        values = self.form_values(key)
        try:
            entry, _ = await self.services.state_entries.put(values, by=self.who, version=values["version"])
        except EntryChanged as exc:
            # Keep this edit in the form and show theirs, rather than overwrite it silently.
            values["version"] = version_of(exc.current)
            self.set_status(409)
            self.render("admin/state_edit.html", values=values, errors={"_form": _CHANGED}, scopes=SCOPES,
                        doc=exc.current, saved_now=exc.current, **await self.funnel_view(key))
            return
        except EntryError as exc:
            self.set_status(400)
            self.render("admin/state_edit.html", values=values, errors={exc.field: exc.message}, scopes=SCOPES,
                        doc=await self.services.state_entries.get(key), saved_now=None, **await self.funnel_view(key))
            return
        self.see_other(f"/admin/states?saved={entry.key}")


class StateDeleteHandler(AdminHandler):
    nav = "states"

    async def post(self, key: str) -> None:
        if not await self.services.state_entries.delete(key, by=self.who):
            self.see_other("/admin/states")  # already gone (another admin, or a second click)
            return
        self.see_other(f"/admin/states?deleted={key}")


class StateQrHandler(AdminHandler):
    """GET ?kind=link|follow: an entry's QR code as a PNG at print size, for posters."""

    nav = "states"

    async def get(self, key: str) -> None:
        codes = self.services.entry_codes
        if await self.services.state_entries.get(key) is None:
            raise tornado.web.HTTPError(404)
        if self.get_query_argument("kind", "link") == "follow":
            png = await codes.stored_follow_png(key)
            if png is None:
                raise PageError(404, T("This entry has no follow code yet: create it first."))
        else:
            png = codes.link_png(key)
        self.set_header("Content-Type", "image/png")
        self.set_header("Content-Disposition", f'attachment; filename="wxauth-{key}.png"')
        self.finish(png)


class StateFollowQrHandler(AdminHandler):
    """POST: creates the entry's permanent follow code (once; later calls reuse it), then shows it."""

    nav = "states"

    async def post(self, key: str) -> None:
        try:
            await self.services.entry_codes.follow_code(key)
        except UnknownEntry:
            raise tornado.web.HTTPError(404) from None
        except (WeChatError, WeChatUnavailable) as exc:
            raise PageError(502, T("WeChat did not create the code: %(why)s", why=describe_failure(exc)),
                            "follow code of %s: %s", key, exc) from None
        self.see_other(f"/admin/states/{key}/qr.png?kind=follow")


default_handlers = [
    (r"/admin/states", StatesHandler),
    (rf"/admin/states/({KEY_PATTERN})", StateEditHandler),
    (rf"/admin/states/({KEY_PATTERN})/delete", StateDeleteHandler),
    (rf"/admin/states/({KEY_PATTERN})/qr\.png", StateQrHandler),
    (rf"/admin/states/({KEY_PATTERN})/follow-qr", StateFollowQrHandler),
]
