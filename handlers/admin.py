"""/admin: sign-in, the state map, replies, users, the custom menu and the audit log (DESIGN.md "Admin")."""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
import unicodedata
from urllib.parse import urlencode

import tornado.web

from handlers.base import BaseHandler
from server.terminal import digits
from server.admin_auth import ADMIN_COOKIE, MAX_FAILURES, SESSION_SECONDS, admin_auth_for
from server.menu import (BUILDER_KINDS, MAX_SUB, MAX_TOP, SUB_DISPLAY_CHARS, TOP_DISPLAY_CHARS, MenuInvalid,
                         MenuService, check_menu, describe_wechat_failure, entry_key_of, menu_from_slots, menu_json,
                         menu_warnings, parse_menu_json, slots_from_menu)
from server.messaging import DEFAULT_REPLY, DEFAULT_WELCOME
from server.redirects import BadTarget, check_target
from server.statemap import KEY_RE, Entry, EntryError, keyword_conflicts, validate_entry
from server.wechat.client import WeChatError, WeChatUnavailable
from server.wechat.oauth import SCOPES

log = logging.getLogger("wxauth.admin")

# Admin pages load only this site's own files, cannot be framed (clickjacking, CWE-1021) and run
# no inline script (XSS, CWE-79): the page's HTML can then never execute what a user typed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
USERS_PER_PAGE = 50
MAX_REPLY = 600  # WeChat shows text replies up to about 2048 bytes; 600 characters stays inside
REPLY_SETTINGS = ("welcome", "default_reply")
_NEXT_RE = re.compile(r"^/admin(?:/[A-Za-z0-9/_-]*)?(?:\?[A-Za-z0-9=&_%.-]*)?$")


class AdminHandler(BaseHandler):
    """Base of every /admin page: 404 unless WX_ADMIN_PASSWORD is set, the admin session,
    security headers, and no caching of pages that show followers' data."""

    login_required = True
    nav = ""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    @property
    def admin_auth(self):
        return admin_auth_for(self.services)

    @property
    def who(self) -> str:
        """The name written to the audit log and to an entry's "changed by"."""
        return f"admin@{self.request.remote_ip}"

    def check_xsrf_cookie(self) -> None:
        # Tornado checks xsrf before prepare(); a disabled admin must still look absent.
        if not self.admin_auth.enabled:
            raise tornado.web.HTTPError(404)
        super().check_xsrf_cookie()

    def get_current_user(self) -> dict | None:
        return None  # prepare() loads the session (it is in MongoDB, so it takes an await)

    def admin_cookie(self) -> bytes | None:
        # Tornado's own timestamp check is a coarse backstop; AdminAuth enforces the 8 h / idle limits.
        return self.get_signed_cookie(ADMIN_COOKIE, max_age_days=SESSION_SECONDS / 86400 + 1)

    async def prepare(self) -> None:
        if not self.admin_auth.enabled:
            raise tornado.web.HTTPError(404)
        session = self.current_user = await self.admin_auth.load_session(self.admin_cookie())
        if session is None and self.login_required:
            if self.get_signed_cookie(ADMIN_COOKIE, max_age_days=SESSION_SECONDS / 86400 + 1):
                self.clear_wx_cookie(ADMIN_COOKIE)
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/admin/login?" + urlencode({"next": self.request.uri}))
                return
            raise tornado.web.HTTPError(403, reason="登录已过期，请重新登录 / Your admin session has ended. "
                                                    "Please sign in again (your last change was not saved).")
        if session is not None and self.admin_auth.needs_touch(session):
            self.set_wx_cookie(ADMIN_COOKIE, self.admin_auth.touched(session))

    def get_template_namespace(self) -> dict:
        namespace = super().get_template_namespace()
        namespace.update(nav=self.nav, notice=None, problem=None, json_dump=_json_dump)
        return namespace

    def see_other(self, url: str) -> None:
        """After a successful POST: the browser GETs the result, so a reload does not re-submit."""
        self.redirect(url, status=303)


def _json_dump(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("_id", "updated_at")}
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _next_url(raw: str | None) -> str:
    """Where to go after signing in: only admin pages of this site (CWE-601)."""
    if raw and _NEXT_RE.match(raw):
        try:
            return check_target(raw)
        except BadTarget:
            pass
    return "/admin/states"


# ---- sign-in ---------------------------------------------------------------------------------------

class LoginHandler(AdminHandler):
    login_required = False

    async def get(self) -> None:
        if self.current_user is not None:
            self.redirect(_next_url(self.get_query_argument("next", None)))
            return
        locked = await self.admin_auth.locked_for(self.request.remote_ip)
        self.render_login(locked_for=locked, signed_out=self.get_query_argument("out", None) is not None)

    async def post(self) -> None:
        result = await self.admin_auth.login(self.request.remote_ip, self.get_body_argument("password", "", strip=False))
        if result.ok:
            self.set_wx_cookie(ADMIN_COOKIE, await self.admin_auth.issue_session())
            self.see_other(_next_url(self.get_body_argument("next", None)))
            return
        if result.locked_for > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(result.locked_for)))
            self.render_login(locked_for=result.locked_for)
            return
        self.set_status(403)
        self.render_login(error=f"密码错误 / Wrong password. 还可尝试 {result.attempts_left} 次 / "
                                f"{result.attempts_left} more attempts before sign-in is locked for a minute.")

    def render_login(self, error: str | None = None, locked_for: float = 0.0, signed_out: bool = False) -> None:
        if locked_for > 0:
            seconds = math.ceil(locked_for)
            error = (f"登录失败次数过多，请 {seconds} 秒后再试。/ Too many failed sign-ins from your address "
                     f"({MAX_FAILURES} in a row): sign-in is locked for {seconds} more seconds.")
        self.render("admin/login.html", error=error, locked=locked_for > 0, signed_out=signed_out,
                    next_url=_next_url(self.get_argument("next", None)))


class LogoutHandler(AdminHandler):
    login_required = False

    async def post(self) -> None:
        # Ends the session in MongoDB: every copy of the cookie stops working, not just this one.
        await self.admin_auth.end_session(self.admin_cookie())
        self.clear_wx_cookie(ADMIN_COOKIE)
        self.see_other("/admin/login?out=1")


class HomeHandler(AdminHandler):
    def get(self) -> None:
        self.redirect("/admin/states")


# ---- the state map ---------------------------------------------------------------------------------

class StatesMixin:
    """Shared by the list/add page and the edit page: one validator, one way to save."""

    def form_values(self: AdminHandler, key: str | None = None) -> dict:
        return {
            "key": key if key is not None else self.get_body_argument("key", "").strip(),
            "page": self.get_body_argument("page", "").strip(),
            "title": self.get_body_argument("title", "").strip(),
            "keywords": self.get_body_argument("keywords", "").strip(),
            "scope": self.get_body_argument("scope", "snsapi_base"),
            "version": self.get_body_argument("version", ""),
        }

    def check_entry(self: AdminHandler, values: dict, docs: list[dict], is_new: bool) -> Entry:
        """The entry as typed, through statemap.validate_entry (redirect rules from server/redirects.py)."""
        entry = validate_entry(values["key"], values["page"], values["title"], values["keywords"], values["scope"],
                               self.config.allowed_hosts, self.config.app_host)
        if is_new and any(doc["_id"] == entry.key for doc in docs):
            raise EntryError("key", f"“{entry.key}” 已存在，请在表中编辑它 / already exists: edit it in the table instead")
        others = [Entry.from_doc(doc) for doc in docs]
        clash = keyword_conflicts(entry, others)
        if clash:
            owner = {w.lower(): e.key for e in others if e.key != entry.key for w in e.keywords}
            named = ", ".join(f"“{w}” ({owner[w.lower()]})" for w in clash)
            raise EntryError("keywords", f"关键词已被其他条目使用 / already used by another entry: {named}")
        return entry

    async def save_entry(self: AdminHandler, entry: Entry) -> None:
        await self.store.set_state(entry.key, entry.fields(), by=self.who)
        # This process answers with the new entry at once; the others within StateMap's refresh (2 s).
        await self.state_map.refresh()


def _version(doc: dict | None) -> str:
    """What the edit form remembers of the entry it was opened on, to notice a concurrent change."""
    if not doc:
        return ""
    at = doc.get("updated_at")
    return at.isoformat() if isinstance(at, datetime.datetime) else str(at or "")


class StatesHandler(StatesMixin, AdminHandler):
    nav = "states"

    async def get(self) -> None:
        await self.render_page(values={"scope": "snsapi_base"}, errors={},
                               notice=self._notice())

    def _notice(self) -> str | None:
        saved, deleted = self.get_query_argument("saved", None), self.get_query_argument("deleted", None)
        if saved and KEY_RE.match(saved):
            return f"已保存 “{saved}”，所有进程将在 5 秒内使用新内容 / Saved “{saved}”: replies use it within 5 seconds."
        if deleted and KEY_RE.match(deleted):
            return f"已删除 “{deleted}” / Deleted “{deleted}”."
        return None

    async def render_page(self, values: dict, errors: dict, notice: str | None = None) -> None:
        docs = await self.store.list_states()
        rows = [(Entry.from_doc(doc), doc) for doc in docs]
        self.render("admin/states.html", rows=rows, values=values, errors=errors, scopes=SCOPES,
                    notice=notice, app_host=self.config.app_host)

    async def post(self) -> None:
        values = self.form_values()
        docs = await self.store.list_states()
        try:
            entry = self.check_entry(values, docs, is_new=True)
        except EntryError as exc:
            self.set_status(400)
            await self.render_page(values=values, errors={exc.field: exc.message})
            return
        await self.save_entry(entry)
        self.see_other(f"/admin/states?saved={entry.key}")


class StateEditHandler(StatesMixin, AdminHandler):
    nav = "states"

    async def get(self, key: str) -> None:
        doc = await self.store.get_state(key)
        if doc is None:
            raise tornado.web.HTTPError(404, reason=f"没有条目 “{key}” / There is no entry “{key}”.")
        entry = Entry.from_doc(doc)
        values = {"key": key, "page": entry.page, "title": entry.title, "keywords": ", ".join(entry.keywords),
                  "scope": entry.scope, "version": _version(doc)}
        self.render("admin/state_edit.html", values=values, errors={}, scopes=SCOPES, doc=doc, current=None)

    async def post(self, key: str) -> None:
        values = self.form_values(key)
        docs = await self.store.list_states()
        current = next((doc for doc in docs if doc["_id"] == key), None)
        errors: dict[str, str] = {}
        if values["version"] != _version(current):
            # Someone saved or deleted this entry since the form was opened: keep this edit in the
            # form and show theirs, rather than overwrite it silently.
            errors["_form"] = ("此条目在您打开后被他人修改或删除。您的修改仍在下方，确认后再次保存。/ Someone else changed or "
                               "deleted this entry after you opened it. Your edit is kept below; save again to replace theirs.")
            values["version"] = _version(current)
        else:
            try:
                entry = self.check_entry(values, docs, is_new=False)
            except EntryError as exc:
                errors[exc.field] = exc.message
        if errors:
            self.set_status(409 if "_form" in errors else 400)
            self.render("admin/state_edit.html", values=values, errors=errors, scopes=SCOPES, doc=current,
                        current=current if "_form" in errors else None)
            return
        await self.save_entry(entry)
        self.see_other(f"/admin/states?saved={entry.key}")


class StateDeleteHandler(AdminHandler):
    nav = "states"

    async def post(self, key: str) -> None:
        if await self.store.delete_state(key, by=self.who) is None:
            self.see_other("/admin/states")  # already gone (another admin, or a second click)
            return
        await self.state_map.refresh()
        self.see_other(f"/admin/states?deleted={key}")


class StateQrHandler(AdminHandler):
    """GET ?kind=link|follow: an entry's QR code as a PNG at print size, for posters."""

    nav = "states"

    async def get(self, key: str) -> None:
        codes = self.services.entry_codes
        if await self.store.get_state(key) is None:
            raise tornado.web.HTTPError(404)
        if self.get_query_argument("kind", "link") == "follow":
            stored = (await self.store.get_state(key) or {}).get("follow_qr")
            if not stored:
                raise tornado.web.HTTPError(404, reason="This entry has no follow code yet: create it first.")
            from server.qrimage import qr_png

            png = qr_png(stored["url"])
        else:
            png = codes.link_png(key)
        self.set_header("Content-Type", "image/png")
        self.set_header("Content-Disposition", f'attachment; filename="wxauth-{key}.png"')
        self.finish(png)


class StateFollowQrHandler(AdminHandler):
    """POST: creates the entry's permanent follow code (once; later calls reuse it), then shows it."""

    nav = "states"

    async def post(self, key: str) -> None:
        from server.entrycodes import UnknownEntry
        from server.wechat.client import WeChatError, WeChatUnavailable

        try:
            await self.services.entry_codes.follow_code(key)
        except UnknownEntry:
            raise tornado.web.HTTPError(404) from None
        except (WeChatError, WeChatUnavailable) as exc:
            raise tornado.web.HTTPError(502, reason=f"WeChat did not create the code: {exc}") from None
        self.see_other(f"/admin/states/{key}/qr.png?kind=follow")


# ---- welcome text and default reply --------------------------------------------------------------

class RepliesHandler(AdminHandler):
    nav = "replies"

    async def get(self) -> None:
        settings = await self.store.get_settings()
        values = {name: settings.get(name) or "" for name in REPLY_SETTINGS}
        notice = "已保存 / Saved." if self.get_query_argument("saved", None) else None
        self.render_page(values, {}, notice)

    def render_page(self, values: dict, errors: dict, notice: str | None = None) -> None:
        messages = self.services.messages
        self.render("admin/replies.html", values=values, errors=errors, notice=notice,
                    defaults={"welcome": DEFAULT_WELCOME, "default_reply": DEFAULT_REPLY},
                    previews={"welcome": messages.welcome_text(), "default_reply": messages.default_text()})

    async def post(self) -> None:
        values = {name: self.get_body_argument(name, "").replace("\r\n", "\n").strip() for name in REPLY_SETTINGS}
        errors = {name: f"最多 {MAX_REPLY} 个字符 / at most {MAX_REPLY} characters (now {len(text)})"
                  for name, text in values.items() if len(text) > MAX_REPLY}
        if errors:
            self.set_status(400)
            self.render_page(values, errors)
            return
        current = await self.store.get_settings()
        for name, text in values.items():
            if text != (current.get(name) or ""):
                await self.store.set_setting(name, text, by=self.who)
        await self.state_map.refresh()
        self.see_other("/admin/replies?saved=1")


# ---- users -------------------------------------------------------------------------------------------

def login_chart(daily: list[tuple[datetime.date, int]], width: int = 600, height: int = 120) -> dict:
    """Bar geometry for the daily-logins SVG, drawn by the template (no script, no chart library)."""
    top = max((count for _, count in daily), default=0)
    scale = max(top, 1)
    step = width / max(len(daily), 1)
    bars = []
    for i, (day, count) in enumerate(daily):
        h = round(count / scale * (height - 20), 1)
        bars.append({"x": round(i * step + 1, 1), "y": round(height - 16 - h, 1), "w": round(step - 2, 1), "h": h,
                     "day": day.isoformat(), "count": count,
                     "label": day.strftime("%m-%d") if i % 5 == 0 or i == len(daily) - 1 else "",
                     "anchor": "end" if i == len(daily) - 1 else "start",
                     "label_x": round((i + 1) * step - 1, 1) if i == len(daily) - 1 else round(i * step + 1, 1)})
    return {"bars": bars, "width": width, "height": height, "max": top, "total": sum(c for _, c in daily),
            "base": height - 16}


class UsersHandler(AdminHandler):
    nav = "users"

    async def get(self) -> None:
        query = self.get_query_argument("q", "").strip()[:128]
        page = max(1, digits(self.get_query_argument("page", "1")) or 1)
        total = await self.store.count_users(query)
        pages = max(1, math.ceil(total / USERS_PER_PAGE))
        page = min(page, pages)
        # skip/limit: only one page of documents is read, however many users there are.
        users = await self.store.find_users(query, skip=(page - 1) * USERS_PER_PAGE, limit=USERS_PER_PAGE)
        counts = await self.store.user_counts()
        chart = login_chart(await self.store.daily_logins(30))

        def page_url(number: int) -> str:
            return "/admin/users?" + urlencode({"q": query, "page": number} if query else {"page": number})

        self.render("admin/users.html", users=users, query=query, page=page, pages=pages, total=total,
                    counts=counts, chart=chart, page_url=page_url)


# ---- the custom menu ---------------------------------------------------------------------------------

class MenuMixin:
    @property
    def menu_service(self: AdminHandler) -> MenuService:
        return MenuService(self.config, self.store, self.services.wechat, self.services.tokens)

    async def render_menu(self: AdminHandler, *, form: dict | None = None, json_text: str | None = None,
                          preview: dict | None = None, errors: dict | None = None, problems: list | None = None,
                          notice: str | None = None, problem: str | None = None, tab: str = "builder") -> None:
        service = self.menu_service
        saved = await service.saved()
        entries = [Entry.from_doc(doc) for doc in await self.store.list_states()]
        builder_complete = True
        if form is None:
            form, builder_complete = slots_from_menu(saved, self.config.app_host)
        if json_text is None:
            json_text = menu_json(saved)
        remote, remote_error = None, None
        try:
            remote = await service.remote()
        except (WeChatError, WeChatUnavailable) as exc:
            remote_error = describe_wechat_failure(exc)
        shown = preview or saved
        warnings = menu_warnings(shown, [e.key for e in entries], self.config.app_host) if shown else []
        self.render("admin/menu.html", form=form, json_text=json_text, saved=saved, preview=shown,
                    previewing=preview is not None, errors=errors or {}, problems=problems or [],
                    warnings=warnings, entries=entries, remote=remote, remote_error=remote_error,
                    remote_json=menu_json(remote), builder_complete=builder_complete, notice=notice,
                    problem=problem, tab=tab, max_top=MAX_TOP, max_sub=MAX_SUB, kinds=BUILDER_KINDS,
                    top_chars=TOP_DISPLAY_CHARS, sub_chars=SUB_DISPLAY_CHARS, menu_label=menu_label,
                    describe=self.describe_button)

    def describe_button(self: AdminHandler, button: dict) -> str:
        """What a leaf button does, in words for an admin."""
        kind = button.get("type")
        if kind == "click":
            return f"发送条目 “{button.get('key')}” 的链接 / replies with the link of entry “{button.get('key')}”"
        if kind == "view":
            key = entry_key_of(button.get("url", ""), self.config.app_host)
            if key:
                return f"打开条目 “{key}” 的页面 / opens entry “{key}”"
            return f"打开网址 / opens {button.get('url')}"
        return f"{kind}"


def menu_label(name: str, chars: int) -> str:
    """The name as the WeChat client shows it: about `chars` Chinese characters (two Latin letters
    take the room of one), then "…" (docs/wechat-protocol.md §8.3)."""
    room, shown = chars * 2, []
    for ch in name:
        width = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if room - width < 0:
            return "".join(shown).rstrip() + "…"
        room -= width
        shown.append(ch)
    return name


class MenuHandler(MenuMixin, AdminHandler):
    nav = "menu"

    async def get(self) -> None:
        notice = {"saved": "菜单已保存（尚未发布）/ Menu saved (not published yet).",
                  "published": "菜单已发布到微信。关注者的菜单最多 5 分钟后更新。/ Menu published to WeChat; followers "
                               "see it within about 5 minutes."}.get(self.get_query_argument("done", ""))
        await self.render_menu(notice=notice)

    async def post(self) -> None:
        source = self.get_body_argument("source", "builder")
        action = self.get_body_argument("action", "preview")
        form = {name: values[-1].decode("utf-8", "replace") for name, values in self.request.body_arguments.items()
                if re.match(r"^b\d(s\d)?_(name|kind|key|url)$", name)}
        json_text = self.get_body_argument("menu_json", "")
        errors: dict[str, str] = {}
        problems: list = []
        if source == "json":
            try:
                menu = parse_menu_json(json_text)
            except MenuInvalid as exc:
                menu, problems = None, exc.problems
        else:
            menu, errors = menu_from_slots(form, self.config.app_host)
            json_text = None  # the JSON tab keeps showing the saved menu
        if errors or problems:
            self.set_status(400)
            await self.render_menu(form=form if source != "json" else None, json_text=json_text, errors=errors,
                                   problems=problems, tab=source,
                                   problem="菜单有错误，见下方标注 / The menu has problems, marked below. Nothing was saved.")
            return
        menu = check_menu(menu)
        if action == "preview":
            await self.render_menu(form=form if source != "json" else None, json_text=menu_json(menu), preview=menu,
                                   tab=source, notice="这是预览，尚未保存 / This is a preview; nothing is saved yet.")
            return
        await self.menu_service.save(menu, by=self.who)
        if action != "publish":
            self.see_other("/admin/menu?done=saved")
            return
        await publish_or_explain(self, menu)


async def publish_or_explain(handler, menu: dict) -> None:
    try:
        await handler.menu_service.publish(menu, by=handler.who)
    except (WeChatError, WeChatUnavailable) as exc:
        handler.set_status(502)
        await handler.render_menu(problem=describe_wechat_failure(exc) + " — 菜单已保存，可稍后再发布 / the menu is saved; "
                                                                         "publish it again later.")
        return
    handler.see_other("/admin/menu?done=published")


class MenuPublishHandler(MenuMixin, AdminHandler):
    """One click: publishes the saved menu as it is."""

    nav = "menu"

    async def post(self) -> None:
        saved = await self.menu_service.saved()
        if not saved:
            self.set_status(400)
            await self.render_menu(problem="还没有保存的菜单 / No menu is saved yet: build one below first.")
            return
        try:
            menu = check_menu(saved)
        except MenuInvalid as exc:
            self.set_status(400)
            await self.render_menu(problems=exc.problems, tab="json",
                                   problem="保存的菜单无效 / The saved menu is not valid; fix it below.")
            return
        await publish_or_explain(self, menu)


# ---- audit log -----------------------------------------------------------------------------------------

class AuditHandler(AdminHandler):
    nav = "audit"

    async def get(self) -> None:
        self.render("admin/audit.html", items=await self.store.recent_audit(200))


default_handlers = [
    (r"/admin/?", HomeHandler),
    (r"/admin/login", LoginHandler),
    (r"/admin/logout", LogoutHandler),
    (r"/admin/states", StatesHandler),
    (r"/admin/states/([a-zA-Z0-9]{1,64})", StateEditHandler),
    (r"/admin/states/([a-zA-Z0-9]{1,64})/delete", StateDeleteHandler),
    (r"/admin/states/([a-zA-Z0-9]{1,64})/qr\.png", StateQrHandler),
    (r"/admin/states/([a-zA-Z0-9]{1,64})/follow-qr", StateFollowQrHandler),
    (r"/admin/replies", RepliesHandler),
    (r"/admin/users", UsersHandler),
    (r"/admin/menu", MenuHandler),
    (r"/admin/menu/publish", MenuPublishHandler),
    (r"/admin/audit", AuditHandler),
]
