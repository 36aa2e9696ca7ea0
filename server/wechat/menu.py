"""WeChat's custom-menu rules: the limits, the button types, validation and the JSON WeChat takes."""

from __future__ import annotations

import copy
import dataclasses
import json
import unicodedata
from urllib.parse import urlsplit

from server.i18n import T, Text

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


def byte_len(text: str) -> int:
    """WeChat counts name and key limits in UTF-8 bytes: a Chinese character is 3."""
    return len(text.encode("utf-8"))


# ---- validation ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MenuProblem:
    """One thing WeChat would refuse; `path` is (top,) or (top, sub), 0-based; `field` a button field."""

    path: tuple[int, ...]
    field: str
    message: Text

    @property
    def where(self) -> Text:
        if not self.path:
            return T("Menu")
        if len(self.path) == 1:
            return T("Button %(button)s", button=self.path[0] + 1)
        return T("Button %(button)s, sub-button %(sub)s", button=self.path[0] + 1, sub=self.path[1] + 1)

    @property
    def text(self) -> Text:
        """Where and what, for a page (say()) or a terminal (i18n.say(p.text, i18n.command_locale()))."""
        return T("%(where)s: %(problem)s", where=self.where, problem=self.message)

    def __str__(self) -> str:  # English, for logs
        return str(self.text)


class MenuInvalid(ValueError):
    """A menu that must not be saved or published; `problems` says what and where."""

    def __init__(self, problems: list[MenuProblem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _name_problem(button: dict, path: tuple[int, ...], limit: int) -> MenuProblem | None:
    name = button.get("name")
    if not isinstance(name, str) or not name.strip():
        return MenuProblem(path, "name", T("the name is missing"))
    size = byte_len(name)
    if size > limit:
        if len(path) == 1:
            return MenuProblem(path, "name", T("the name is %(size)s bytes; a top-level name may have at most "
                                               "%(limit)s bytes (a Chinese character counts 3)", size=size, limit=limit))
        return MenuProblem(path, "name", T("the name is %(size)s bytes; a sub-menu name may have at most "
                                           "%(limit)s bytes (a Chinese character counts 3)", size=size, limit=limit))
    return None


def _leaf_problems(button: dict, path: tuple[int, ...]) -> list[MenuProblem]:
    top = len(path) == 1
    problems = []
    name = _name_problem(button, path, TOP_NAME_BYTES if top else SUB_NAME_BYTES)
    if name:
        problems.append(name)
    kind = button.get("type")
    if kind not in TYPES:
        shown = kind if isinstance(kind, str) and kind else "(none)"
        problems.append(MenuProblem(path, "type", T("type %(type)s is not a WeChat menu type (e.g. click, view, "
                                                    "miniprogram)", type=repr(shown))))
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
        checks += [("appid", 64, T("mini program appid")), ("pagepath", URL_BYTES, T("mini program page path"))]
    for field, limit, label in checks:
        value = button.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(MenuProblem(path, field, T("a %(kind)s button needs a %(label)s", kind=kind, label=label)))
        elif byte_len(value) > limit:
            problems.append(MenuProblem(path, field, T("the %(label)s is %(size)s bytes; WeChat allows at most %(limit)s",
                                                       label=label, size=byte_len(value), limit=limit)))
        elif field == "url" and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            problems.append(MenuProblem(path, "url", T("the URL must start with http:// or https://")))
    return problems


def validate_menu(menu) -> list[MenuProblem]:
    """Everything WeChat's /cgi-bin/menu/create would refuse in `menu` (docs/wechat-protocol.md §8.3)."""
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        return [MenuProblem((), "button", T('the menu must look like {"button": [...]}'))]
    buttons = menu["button"]
    problems: list[MenuProblem] = []
    if not 1 <= len(buttons) <= MAX_TOP:
        problems.append(MenuProblem((), "button", T("a menu has 1 to %(max)s top-level buttons, this one has %(n)s",
                                                    max=MAX_TOP, n=len(buttons))))
    for i, button in enumerate(buttons[:MAX_TOP + 2]):
        path = (i,)
        if not isinstance(button, dict):
            problems.append(MenuProblem(path, "type", T("a button must be a JSON object")))
            continue
        subs = button.get("sub_button")
        if subs in (None, []):
            problems += _leaf_problems(button, path)
            continue
        if not isinstance(subs, list):
            problems.append(MenuProblem(path, "sub_button", T("sub_button must be a list")))
            continue
        if button.get("type"):
            # §8.3: a top-level item has either a type or sub-buttons, never both.
            problems.append(MenuProblem(path, "type", T("a button with sub-buttons cannot have a type too")))
        name = _name_problem(button, path, TOP_NAME_BYTES)
        if name:
            problems.append(name)
        if len(subs) > MAX_SUB:
            problems.append(MenuProblem(path, "sub_button", T("at most %(max)s sub-buttons, this one has %(n)s",
                                                              max=MAX_SUB, n=len(subs))))
        for j, sub in enumerate(subs[:MAX_SUB + 2]):
            if not isinstance(sub, dict):
                problems.append(MenuProblem((i, j), "type", T("a button must be a JSON object")))
            elif sub.get("sub_button"):
                problems.append(MenuProblem((i, j), "sub_button", T("a sub-button cannot have sub-buttons")))
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
        raise MenuInvalid([MenuProblem((), "json", T("not valid JSON at line %(line)s, column %(column)s: %(error)s",
                                                     line=line, column=column, error=getattr(exc, "msg", str(exc))))]) from None
    return check_menu(menu)


def menu_json(menu: dict | None) -> str:
    # Raw UTF-8, no \u escapes: WeChat refuses those with 40033 (docs/wechat-protocol.md §8.3).
    return json.dumps(menu, ensure_ascii=False, indent=2) if menu else ""


def iter_leaves(menu: dict):
    for i, button in enumerate(menu.get("button") or []):
        subs = button.get("sub_button") or []
        if subs:
            for j, sub in enumerate(subs):
                yield (i, j), sub
        else:
            yield (i,), button


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
