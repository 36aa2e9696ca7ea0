"""The custom menu: WeChat's limits, the button builder, saving, publishing, and the `menu` commands."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import re
import sys
from urllib.parse import urlsplit

from server.links import entry_url
from server.wechat.client import WeChatError, WeChatUnavailable

log = logging.getLogger("wxauth.menu")

SETTING = "menu"  # the saved menu lives in the settings collection under this name

# docs/wechat-protocol.md §8.3 (current limits; older documents gave 40-byte sub names, 256-byte URLs).
MAX_TOP = 3
MAX_SUB = 5
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60
KEY_BYTES = 128
URL_BYTES = 1024
MEDIA_BYTES = 128
# What the client shows before cutting with "…" (§8.3: about 4 Chinese characters on top, 8 below).
TOP_DISPLAY_CHARS = 4
SUB_DISPLAY_CHARS = 8

TYPES = ("click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
         "pic_weixin", "location_select", "media_id", "view_limited", "miniprogram", "article_id",
         "article_view_limited")
KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                       "pic_weixin", "location_select"})
URL_TYPES = frozenset({"view", "miniprogram"})
MEDIA_TYPES = frozenset({"media_id", "view_limited"})
ARTICLE_TYPES = frozenset({"article_id", "article_view_limited"})
_GO_PATH = re.compile(r"^/wx/go/([a-zA-Z0-9]{1,64})$")


def byte_len(text: str) -> int:
    """WeChat counts name and key limits in UTF-8 bytes: a Chinese character is 3."""
    return len(text.encode("utf-8"))


# ---- validation ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MenuProblem:
    """One thing WeChat would refuse; `path` is (top,) or (top, sub), 0-based; `field` a button field."""

    path: tuple[int, ...]
    field: str
    message: str

    @property
    def where(self) -> str:
        if not self.path:
            return "菜单 Menu"
        if len(self.path) == 1:
            return f"按钮 {self.path[0] + 1} / Button {self.path[0] + 1}"
        return f"按钮 {self.path[0] + 1} › 子按钮 {self.path[1] + 1} / Button {self.path[0] + 1}, sub-button {self.path[1] + 1}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class MenuInvalid(ValueError):
    """A menu that must not be saved or published; `problems` says what and where."""

    def __init__(self, problems: list[MenuProblem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _name_problem(button: dict, path: tuple[int, ...], limit: int, level: str) -> MenuProblem | None:
    name = button.get("name")
    if not isinstance(name, str) or not name.strip():
        return MenuProblem(path, "name", "名称不能为空 / the name is missing")
    size = byte_len(name)
    if size > limit:
        return MenuProblem(path, "name", f"名称 {size} 字节，{level}最多 {limit} 字节 / the name is {size} bytes; "
                                         f"a {'top-level' if len(path) == 1 else 'sub-menu'} name may have at most "
                                         f"{limit} bytes (a Chinese character counts 3)")
    return None


def _leaf_problems(button: dict, path: tuple[int, ...]) -> list[MenuProblem]:
    top = len(path) == 1
    problems = []
    name = _name_problem(button, path, TOP_NAME_BYTES if top else SUB_NAME_BYTES, "一级菜单" if top else "子菜单")
    if name:
        problems.append(name)
    kind = button.get("type")
    if kind not in TYPES:
        shown = kind if isinstance(kind, str) and kind else "(none)"
        problems.append(MenuProblem(path, "type", f"类型 {shown} 无效 / type {shown!r} is not a WeChat menu type "
                                                    f"(e.g. click, view, miniprogram)"))
        return problems
    checks = []
    if kind in KEY_TYPES:
        checks.append(("key", KEY_BYTES, "key"))
    if kind in URL_TYPES:
        checks.append(("url", URL_BYTES, "URL"))
    if kind in MEDIA_TYPES:
        checks.append(("media_id", MEDIA_BYTES, "media_id"))
    if kind in ARTICLE_TYPES:
        checks.append(("article_id", MEDIA_BYTES, "article_id"))
    if kind == "miniprogram":
        checks += [("appid", 64, "mini program appid"), ("pagepath", URL_BYTES, "mini program page path")]
    for field, limit, label in checks:
        value = button.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(MenuProblem(path, field, f"{label} 不能为空 / a {kind} button needs a {label}"))
        elif byte_len(value) > limit:
            problems.append(MenuProblem(path, field, f"{label} 有 {byte_len(value)} 字节，最多 {limit} 字节 / the {label} is "
                                                     f"{byte_len(value)} bytes; WeChat allows at most {limit}"))
        elif field == "url" and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            problems.append(MenuProblem(path, "url", "网址须以 http:// 或 https:// 开头 / the URL must start with http:// or https://"))
    return problems


def validate_menu(menu) -> list[MenuProblem]:
    """Everything WeChat's /cgi-bin/menu/create would refuse in `menu` (docs/wechat-protocol.md §8.3)."""
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        return [MenuProblem((), "button", '菜单须为 {"button": [...]} / the menu must look like {"button": [...]}')]
    buttons = menu["button"]
    problems: list[MenuProblem] = []
    if not 1 <= len(buttons) <= MAX_TOP:
        problems.append(MenuProblem((), "button", f"一级菜单须有 1-{MAX_TOP} 个按钮，现有 {len(buttons)} 个 / a menu has 1 to "
                                                  f"{MAX_TOP} top-level buttons, this one has {len(buttons)}"))
    for i, button in enumerate(buttons[:MAX_TOP + 2]):
        path = (i,)
        if not isinstance(button, dict):
            problems.append(MenuProblem(path, "type", "按钮须为 JSON 对象 / a button must be a JSON object"))
            continue
        subs = button.get("sub_button")
        if subs in (None, []):
            problems += _leaf_problems(button, path)
            continue
        if not isinstance(subs, list):
            problems.append(MenuProblem(path, "sub_button", "sub_button 须为列表 / sub_button must be a list"))
            continue
        if button.get("type"):
            # §8.3: a top-level item has either a type or sub-buttons, never both.
            problems.append(MenuProblem(path, "type", "有子菜单的按钮不能有类型 / a button with sub-buttons cannot have a type too"))
        name = _name_problem(button, path, TOP_NAME_BYTES, "一级菜单")
        if name:
            problems.append(name)
        if len(subs) > MAX_SUB:
            problems.append(MenuProblem(path, "sub_button", f"子菜单最多 {MAX_SUB} 个，现有 {len(subs)} 个 / at most {MAX_SUB} "
                                                            f"sub-buttons, this one has {len(subs)}"))
        for j, sub in enumerate(subs[:MAX_SUB + 2]):
            if not isinstance(sub, dict):
                problems.append(MenuProblem((i, j), "type", "按钮须为 JSON 对象 / a button must be a JSON object"))
            elif sub.get("sub_button"):
                problems.append(MenuProblem((i, j), "sub_button", "子菜单不能再有子菜单 / a sub-button cannot have sub-buttons"))
            else:
                problems += _leaf_problems(sub, (i, j))
    return problems


def normalize_menu(menu: dict) -> dict:
    """The menu as we save and send it: /cgi-bin/menu/get's `{"menu": ...}` wrapper and its empty
    `sub_button: []` on leaves removed, names and values stripped of surrounding spaces."""
    if isinstance(menu, dict) and "button" not in menu and isinstance(menu.get("menu"), dict):
        menu = menu["menu"]
    menu = copy.deepcopy(menu)
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        return menu
    for button in menu["button"]:
        for item in [button] + (button.get("sub_button") or [] if isinstance(button, dict) else []):
            if not isinstance(item, dict):
                continue
            if item.get("sub_button") == []:
                del item["sub_button"]
            for field, value in list(item.items()):
                if isinstance(value, str):
                    item[field] = value.strip()
    return {"button": menu["button"]}


def check_menu(menu) -> dict:
    """The normalized menu, or MenuInvalid listing every problem."""
    menu = normalize_menu(menu)
    problems = validate_menu(menu)
    if problems:
        raise MenuInvalid(problems)
    return menu


def parse_menu_json(text: str) -> dict:
    """A menu typed or loaded as JSON; MenuInvalid says where the JSON is broken."""
    try:
        menu = json.loads(text)
    except ValueError as exc:
        line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        raise MenuInvalid([MenuProblem((), "json", f"JSON 格式错误（第 {line} 行第 {column} 列）/ not valid JSON at line "
                                                   f"{line}, column {column}: {getattr(exc, 'msg', str(exc))}")]) from None
    return check_menu(menu)


def menu_json(menu: dict | None) -> str:
    # Raw UTF-8, no \u escapes: WeChat refuses those with 40033 (docs/wechat-protocol.md §8.3).
    return json.dumps(menu, ensure_ascii=False, indent=2) if menu else ""


def menu_warnings(menu: dict, state_keys, app_host: str) -> list[str]:
    """Buttons WeChat accepts but that would not lead anywhere: unknown state keys."""
    keys = set(state_keys)
    warnings = []
    for path, button in iter_leaves(menu):
        where = MenuProblem(path, "", "").where
        if button.get("type") == "click" and button.get("key") not in keys:
            warnings.append(f"{where}: 键 {button.get('key')!r} 不在状态表中，点击会得到默认回复 / key "
                            f"{button.get('key')!r} is not in the state map; a tap gets the default reply")
        if button.get("type") == "view":
            key = entry_key_of(button.get("url", ""), app_host)
            if key is not None and key not in keys:
                warnings.append(f"{where}: 链接指向不存在的条目 {key!r} / the link opens entry {key!r}, which does not exist")
    return warnings


def iter_leaves(menu: dict):
    for i, button in enumerate(menu.get("button") or []):
        subs = button.get("sub_button") or []
        if subs:
            for j, sub in enumerate(subs):
                yield (i, j), sub
        else:
            yield (i,), button


def entry_key_of(url: str, app_host: str) -> str | None:
    """The state key when `url` is one of our /wx/go/<key> links (server.links.entry_url), else None."""
    if not url.startswith(app_host + "/"):
        return None
    match = _GO_PATH.match(url[len(app_host):])
    return match.group(1) if match else None


# ---- the button builder (the form on /admin/menu) -----------------------------------------------
# Each slot is "b<i>" (top) or "b<i>s<j>" (sub); its fields are <slot>_name, <slot>_kind and
# <slot>_key (a state key) or <slot>_url. Kinds: "" (unused), "sub" (opens sub-buttons, top only),
# "view" (opens a state entry's link), "click" (the entry's link arrives as a message), "url".

BUILDER_KINDS = ("", "view", "click", "url", "sub")


def slot_name(i: int, j: int | None = None) -> str:
    return f"b{i}" if j is None else f"b{i}s{j}"


def menu_from_slots(form: dict, app_host: str) -> tuple[dict, dict[str, str]]:
    """The menu the builder form describes, and problems keyed by form field (name, key, url)."""
    errors: dict[str, str] = {}
    buttons, origin = [], []

    def leaf(slot: str, kind: str, name: str) -> dict | None:
        key = form.get(f"{slot}_key", "").strip()
        if kind in ("view", "click"):
            if not key:
                errors[f"{slot}_key"] = "请选择一个条目 / choose an entry"
                return None
            if kind == "view":
                return {"type": "view", "name": name, "url": entry_url(app_host, key)}
            return {"type": "click", "name": name, "key": key}
        if kind == "url":
            return {"type": "view", "name": name, "url": form.get(f"{slot}_url", "").strip()}
        errors[f"{slot}_kind"] = "请选择按钮类型 / choose what the button does"
        return None

    for i in range(MAX_TOP):
        slot = slot_name(i)
        name, kind = form.get(f"{slot}_name", "").strip(), form.get(f"{slot}_kind", "")
        if not name and not kind:
            continue
        if kind == "sub":
            subs, sub_origin = [], []
            for j in range(MAX_SUB):
                sub_slot = slot_name(i, j)
                sub_name, sub_kind = form.get(f"{sub_slot}_name", "").strip(), form.get(f"{sub_slot}_kind", "")
                if not sub_name and not sub_kind:
                    continue
                made = leaf(sub_slot, sub_kind, sub_name)
                if made is not None:
                    subs.append(made)
                    sub_origin.append(sub_slot)
            if not subs and f"{slot}_kind" not in errors:
                errors[f"{slot}_kind"] = "子菜单至少要有一个按钮 / add at least one sub-button below"
            buttons.append({"name": name, "sub_button": subs})
            origin.append((slot, sub_origin))
        else:
            made = leaf(slot, kind, name)
            if made is not None:
                buttons.append(made)
                origin.append((slot, []))
    menu = {"button": buttons}
    if not buttons and not errors:
        errors["b0_name"] = "菜单至少要有一个按钮 / a menu needs at least one button"
    for problem in validate_menu(menu) if buttons else []:
        if not problem.path:
            continue
        slot, sub_origin = origin[problem.path[0]]
        if len(problem.path) == 2:
            slot = sub_origin[problem.path[1]]
        field = {"name": "name", "key": "key", "url": "url" if form.get(f"{slot}_kind") == "url" else "key"}.get(
            problem.field, "kind")
        errors.setdefault(f"{slot}_{field}", problem.message)
    return menu, errors


def slots_from_menu(menu: dict | None, app_host: str) -> tuple[dict[str, str], bool]:
    """The builder form for a saved menu, and whether the builder can show all of it."""
    form: dict[str, str] = {}
    complete = True

    def fill(slot: str, button: dict) -> None:
        nonlocal complete
        form[f"{slot}_name"] = button.get("name", "")
        kind, key = button.get("type"), None
        if kind == "view":
            key = entry_key_of(button.get("url", ""), app_host)
            form[f"{slot}_kind"] = "view" if key else "url"
            form[f"{slot}_key" if key else f"{slot}_url"] = key or button.get("url", "")
        elif kind == "click":
            form[f"{slot}_kind"], form[f"{slot}_key"] = "click", button.get("key", "")
        else:
            complete = False

    for i, button in enumerate((menu or {}).get("button", [])[:MAX_TOP]):
        if button.get("sub_button"):
            form[f"b{i}_name"], form[f"b{i}_kind"] = button.get("name", ""), "sub"
            for j, sub in enumerate(button["sub_button"][:MAX_SUB]):
                fill(slot_name(i, j), sub)
        else:
            fill(slot_name(i), button)
    return form, complete


# ---- saving and publishing -----------------------------------------------------------------------

class MenuService:
    """The saved menu (settings "menu"), publishing through the global token, and WeChat's copy."""

    def __init__(self, config, store, wechat, tokens):
        self.config = config
        self.store = store
        self.wechat = wechat
        self.tokens = tokens

    async def saved(self) -> dict | None:
        return await self.store.get_setting(SETTING)

    async def save(self, menu: dict, by: str) -> dict:
        menu = check_menu(menu)
        await self.store.set_setting(SETTING, menu, by=by)
        return menu

    async def publish(self, menu: dict, by: str) -> dict:
        """Sends `menu` to /cgi-bin/menu/create; raises MenuInvalid, WeChatError or WeChatUnavailable."""
        menu = check_menu(menu)
        await self.tokens.call(lambda token: self.wechat.menu_create(token, menu))
        await self.store.record_audit(by, "menu.publish", SETTING, None, menu)
        log.info("menu with %d buttons published by %s", len(menu["button"]), by)
        return menu

    async def remote(self) -> dict | None:
        """The menu WeChat has now (/cgi-bin/menu/get), None when none is published (46003)."""
        try:
            answer = await self.tokens.call(self.wechat.menu_get)
        except WeChatError as exc:
            if exc.errcode == 46003:
                return None
            raise
        return normalize_menu(answer.get("menu") or answer)


def describe_wechat_failure(exc: Exception) -> str:
    """A sentence for an admin or the terminal: what WeChat said, never a token or a URL."""
    if isinstance(exc, WeChatError):
        hints = {
            40001: "the AppSecret or access_token is not valid (check WX_APPSECRET)",
            40013: "the AppID is not valid (check WX_APPID)",
            40125: "the AppSecret is not valid (check WX_APPSECRET)",
            40164: "this server's IP address is not in the account's IP whitelist",
            45009: "today's API quota is used up",
            48001: "this account may not use the menu API",
            89503: "an administrator must confirm this server's IP address in the console",
        }
        hint = hints.get(exc.errcode, exc.errmsg.split(" rid:")[0] or "no explanation")
        return f"微信拒绝了请求 / WeChat refused: errcode {exc.errcode} ({hint})"
    if isinstance(exc, WeChatUnavailable):
        return f"微信暂时无法访问 / WeChat could not be reached ({exc.reason}); please try again in a moment"
    return f"出错了 / failed: {type(exc).__name__}"


# ---- the command line (server/cli.py calls these) ------------------------------------------------

@contextlib.asynccontextmanager
async def cli_menu_service(config, store):
    """A MenuService for one command: its own HTTP session, WeChat client and token service."""
    import aiohttp

    from server.tokens import TokenService
    from server.wechat.client import WeChatClient

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), headers={"User-Agent": "wxauth-cli"})
    try:
        wechat = WeChatClient(session, config.api_base, config.appid, config.appsecret, timeout=10.0)
        yield MenuService(config, store, wechat, TokenService(store, wechat, config.appid))
    finally:
        await session.close()


def _read_menu_file(path: str) -> dict:
    from server.cli import CommandError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}") from None
    try:
        return parse_menu_json(text)
    except MenuInvalid as exc:
        raise CommandError(f"{path} cannot be published:\n  " + "\n  ".join(str(p) for p in exc.problems)) from None


async def menu_show(config, store, args) -> int:
    """Prints WeChat's current menu as JSON (or the saved one with --saved)."""
    from server.cli import CommandError

    if getattr(args, "saved", False):
        menu = await store.get_setting(SETTING)
        if not menu:
            raise CommandError("no menu saved yet (python -m server menu save FILE)", code=1)
        print(menu_json(menu))
        return 0
    async with cli_menu_service(config, store) as service:
        try:
            menu = await service.remote()
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(describe_wechat_failure(exc), code=1) from None
    if menu is None:
        print("WeChat has no custom menu for this account", file=sys.stderr)
        return 0
    print(menu_json(menu))
    return 0


async def menu_publish(config, store, args) -> int:
    """Publishes a menu JSON file, or the saved menu when no file is given; exit 2 on a bad file."""
    from server.cli import CLI_USER, CommandError

    if getattr(args, "file", None):
        menu, source = _read_menu_file(args.file), args.file
    else:
        saved = await store.get_setting(SETTING)
        if not saved:
            raise CommandError("no menu saved yet: give a JSON file, or save one at /admin/menu or with `menu save FILE`")
        try:
            menu = check_menu(saved)
        except MenuInvalid as exc:
            raise CommandError("the saved menu is not valid:\n  " + "\n  ".join(str(p) for p in exc.problems)) from None
        source = "the saved menu"
    async with cli_menu_service(config, store) as service:
        try:
            await service.publish(menu, by=CLI_USER)
        except (WeChatError, WeChatUnavailable) as exc:
            raise CommandError(describe_wechat_failure(exc), code=1) from None
    print(f"published {source}: {len(menu['button'])} top-level buttons")
    for warning in menu_warnings(menu, [d["_id"] for d in await store.list_states()], config.app_host):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


async def menu_save(config, store, args) -> int:
    """Saves a menu JSON file as the menu /admin/menu edits and `menu publish` sends."""
    from server.cli import CLI_USER

    menu = _read_menu_file(args.file)
    await store.set_setting(SETTING, menu, by=CLI_USER)
    print(f"saved {args.file}: {len(menu['button'])} top-level buttons (not published yet)")
    return 0
