"""Languages through tornado.locale: messages are written in English, locale/zh_CN.csv is Chinese, the default."""

from __future__ import annotations

import os

import tornado.locale

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCALE_DIR = os.path.join(ROOT, "locale")
DEFAULT = "zh_CN"
# The picker's choices, each named in its own language (a person who reads only one must find it).
LANGUAGES = {"zh_CN": "中文", "en_US": "English"}
LANG_COOKIE = "wx_lang"
LANG_ARG = "lang"  # ?lang=en_US on any page picks English and remembers it in LANG_COOKIE
LANG_DAYS = 365  # how long LANG_COOKIE remembers the pick


def load() -> None:
    """Reads locale/*.csv (tornado's CSV format: message, translation[, plural|singular])."""
    tornado.locale.load_translations(LOCALE_DIR)
    tornado.locale.set_default_locale(DEFAULT)


# At import: every module that shows a translated word imports this one first.
load()


def pick(raw: str | None) -> str | None:
    """A supported locale code for what a person or an environment named ("en", "en-GB", "zh_CN.UTF-8"), or None."""
    if not raw:
        return None
    code = raw.split(".")[0].split("@")[0].replace("-", "_")
    if code in LANGUAGES:
        return code
    language = code.split("_")[0].lower()
    for supported in LANGUAGES:
        if supported.split("_")[0] == language:
            return supported
    return None


MAX_LANGUAGES = 20  # a header listing more is read only that far (bounded work per request)


def browser_choice(accept_language: str) -> str | None:
    """The supported locale an Accept-Language header prefers most (RFC 9110 §12.5.4), or None."""
    choices = []
    for position, part in enumerate(accept_language.split(",")[:MAX_LANGUAGES]):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = pick(name.strip()) if name.strip() != "*" else None
        if code is not None and quality > 0:
            choices.append((-quality, position, code))
    return min(choices)[2] if choices else None


def locale(code: str | None = None) -> tornado.locale.Locale:
    return tornado.locale.get(pick(code) or DEFAULT)


def user_choice(arg: str | None, cookie: str | None) -> tuple[str | None, bool]:
    """What a person picked: ?lang= (LANG_ARG), else their LANG_COOKIE; None when neither names a
    language we have (then the browser's Accept-Language decides). True when the cookie must
    remember a new ?lang=."""
    chosen = pick(arg)
    if chosen is not None:
        return chosen, chosen != cookie
    return pick(cookie), False


def browser_locale(accept_language: str | None, default: str = DEFAULT) -> tornado.locale.Locale:
    """The locale for an Accept-Language header (browser_choice), `default` when it names none we have."""
    return tornado.locale.get(browser_choice(accept_language or "") or default)


def command_locale(environ=None) -> tornado.locale.Locale:
    """The command line's language: LC_ALL, LC_MESSAGES or LANG as gettext reads them; Chinese when
    none names a language we have (unset, C, POSIX)."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return locale(value)  # the first one set decides, as in gettext
    return locale(DEFAULT)


class Text:
    """A sentence for a person, translated where it is shown: an English message, its plural form
    and count, and its %(name)s values. Services raise and return these; a page renders them in
    the reader's locale (BaseHandler.say), a command in the terminal's (command_locale)."""

    __slots__ = ("message", "plural", "count", "values")

    def __init__(self, message: str, plural: str | None = None, count: int | None = None, **values):
        self.message, self.plural, self.count, self.values = message, plural, count, values

    def render(self, where: tornado.locale.Locale) -> str:
        text = where.translate(self.message, self.plural, self.count)
        values = {k: v.render(where) if isinstance(v, Text) else v for k, v in self.values.items()}
        if self.count is not None:
            values.setdefault("count", self.count)  # a plural message names its number %(count)d
        # Without values a message is used as written, so a bare "%" needs no doubling there.
        return text % values if values else text

    def __str__(self) -> str:  # logs, which are for operators, read English
        return self.render(tornado.locale.Locale.get("en_US"))

    def __repr__(self) -> str:
        return f"T({self.message!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Text) and (self.message, self.plural, self.count, self.values) == (
            other.message, other.plural, other.count, other.values)

    __hash__ = None


def T(message: str, plural: str | None = None, count: int | None = None, **values) -> Text:
    """Marks a message for translation (tests/test_locale.py finds every T("...") and _("...") and
    checks locale/zh_CN.csv has it)."""
    return Text(message, plural, count, **values)


def say(value, where: tornado.locale.Locale) -> str:
    """A Text in `where`'s language, also an exception raised with one (SomeError(T("..."))); anything
    else (a name, a number, data) as it is."""
    if isinstance(value, BaseException) and value.args and isinstance(value.args[0], Text):
        value = value.args[0]
    if isinstance(value, Text):
        return value.render(where)
    return "" if value is None else str(value)
