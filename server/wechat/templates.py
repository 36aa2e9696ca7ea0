"""Template messages' rules: a template's keys, each value checked by its key's type, the preview (§13)."""

from __future__ import annotations

import re

from server.i18n import T, Text

# §13.5: keys appear as {{thing1.DATA}}; the doc's own sample writes "{ {thing1.DATA} }".
KEY_RE = re.compile(r"\{\s*\{\s*(\w+)\.DATA\s*\}\s*\}")
MAX_LEGACY = 200  # keyword-style templates: WeChat shortens long values; we refuse well before

_DIGITS = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_LETTERS = re.compile(r"^[A-Za-z]+$")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
_CHAR_STRING = re.compile(r"^[0-9A-Za-z!-/:-@\[-`{-~]+$")
_PHONE = re.compile(r"^[0-9+\-() ]+$")
_AMOUNT = re.compile(r"^[¥\uffe5$]?[0-9]{1,10}(\.[0-9]{1,2})?\u5143?$")  # ¥, fullwidth ¥, yuan


def template_keys(content: str) -> list[str]:
    """The data keys the template's text names, in order, each once."""
    seen: list[str] = []
    for key in KEY_RE.findall(content or ""):
        if key not in seen:
            seen.append(key)
    return seen


def _type_of(key: str) -> str:
    return re.sub(r"[0-9]+$", "", key)


def value_problem(key: str, value: str) -> Text | None:
    """Why WeChat would refuse `value` for `key` with 47003 (§13.3), in words; None when fine."""
    kind = _type_of(key)
    if "\n" in value:
        return T("one line (WeChat drops what follows a line break)")
    checks = {
        "thing": (len(value) <= 20, T("at most %(max)s characters", max=20)),
        "number": (len(value) <= 32 and bool(_DIGITS.match(value)), T("digits (a decimal point allowed), at most 32")),
        "letter": (len(value) <= 32 and bool(_LETTERS.match(value)), T("letters only, at most 32")),
        "symbol": (0 < len(value) <= 5, T("at most 5 symbols")),
        "character_string": (len(value) <= 32 and bool(_CHAR_STRING.match(value)),
                             T("letters, digits and symbols, at most 32")),
        "time": (0 < len(value) <= 40, T("a time such as 2026-01-20 10:00")),
        "date": (0 < len(value) <= 40, T("a date")),
        "amount": (bool(_AMOUNT.match(value)), T("an amount such as ¥39.8")),
        "phone_number": (len(value) <= 17 and bool(_PHONE.match(value)), T("a phone number, at most 17 digits")),
        "car_number": (len(value) <= 8, T("at most %(max)s characters", max=8)),
        "name": (len(value) <= 10 if _CJK.match(value) else len(value) <= 20 and bool(_LETTERS.match(value.replace(" ", ""))),
                 T("10 Chinese characters or 20 letters")),
        "phrase": (len(value) <= 5 and bool(_CJK.match(value)), T("at most 5 Chinese characters, nothing else")),
    }
    if not value:
        return T("required")
    ok, rule = checks.get(kind, (len(value) <= MAX_LEGACY, T("at most %(max)s characters", max=MAX_LEGACY)))
    return None if ok else rule


def check_data(content: str, values: dict[str, str]) -> dict[str, Text]:
    """Problems by key for the template `content` filled with `values` (missing and unknown keys too)."""
    keys = template_keys(content)
    problems = {key: why for key in keys if (why := value_problem(key, (values.get(key) or "").strip()))}
    for key in values:
        if key not in keys:
            problems[key] = T("the template has no such field")
    return problems


def preview(content: str, values: dict[str, str]) -> str:
    """The message as the follower reads it (without the account's header and the link)."""
    return KEY_RE.sub(lambda m: values.get(m.group(1), ""), content or "")


def send_data(values: dict[str, str]) -> dict:
    """The `data` object of template/send (§13.2)."""
    return {key: {"value": value} for key, value in values.items()}
