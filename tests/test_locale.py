"""Languages: every message has its Chinese translation, Chinese is the default, English on request."""

from __future__ import annotations

import ast
import csv
import os
import re

import pytest

from conftest import ROOT
from server import i18n

LOCALE_DIR = os.path.join(ROOT, "locale")
# Where people read what we write: pages, their scripts, the services' messages, the commands.
SOURCE_DIRS = ("handlers", "server", "templates", "static/js")
# jweixin-1.6.0.js imitates WeChat's own script (its words are WeChat's, not ours).
NOT_OURS = ("server/sandbox/static/jweixin-1.6.0.js",)
# Content, not our words: the default replies are the account's words to followers inside WeChat,
# which sends no language; the demo account's entries, menu, courses, templates, name and its
# followers' nicknames are the account's own content, in its language (Chinese). A name here is a
# module constant, or a function whose constants are all content.
CONTENT = {("server/messaging.py", "DEFAULT_WELCOME"), ("server/messaging.py", "DEFAULT_REPLY"),
           ("server/messaging.py", "KEYWORD_SEPARATOR"),
           ("server/sandbox/demo.py", "DEMO_STATES"), ("server/sandbox/demo.py", "DEMO_MENU"),
           ("server/sandbox/demo.py", "DEMO_GRADES"), ("server/sandbox/templatebook.py", "DEMO_TEMPLATES"),
           ("server/sandbox/state.py", "APP_NAME"), ("server/sandbox/state.py", "NEW_NICKNAME"),
           ("server/sandbox/state.py", "_demo_followers")}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# _("..."), _('...') in templates, with an optional plural: _("one", "many", n)
TEMPLATE_CALL = re.compile(r"""\b_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')(?:\s*,\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))?""")


def placeholders(message: str) -> set[str]:
    """The %(name)s fields of a message: its translation must keep the same ones."""
    return set(re.findall(r"%\((\w+)\)[sd]", message))


def files(*suffixes):
    for top in SOURCE_DIRS:
        for folder, _dirs, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                path = os.path.relpath(os.path.join(folder, name), ROOT)
                if name.endswith(suffixes) and not path.startswith(NOT_OURS):
                    yield path


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def python_messages(path: str):
    """(message, line) for each T("...") / _("...") in a module, plural forms included."""
    for node in ast.walk(ast.parse(read(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("T", "_"):
            for arg in node.args[:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value, node.lineno
            for kw in node.keywords:
                if kw.arg == "plural" and isinstance(kw.value, ast.Constant):
                    yield kw.value.value, node.lineno


def template_messages(path: str):
    for number, line in enumerate(read(path).splitlines(), 1):
        for match in TEMPLATE_CALL.finditer(line):
            for literal in match.groups():
                if literal is not None:
                    yield ast.literal_eval(literal), number


def used_messages() -> dict[str, str]:
    """Every marked message -> where it is first used."""
    found: dict[str, str] = {}
    for path in files(".py"):
        for message, line in python_messages(path):
            found.setdefault(message, f"{path}:{line}")
    for path in files(".html"):
        for message, line in template_messages(path):
            found.setdefault(message, f"{path}:{line}")
    return found


def translations(code: str) -> list[list[str]]:
    with open(os.path.join(LOCALE_DIR, code + ".csv"), encoding="utf-8", newline="") as f:
        return [row for row in csv.reader(f) if len(row) >= 2]


def test_every_message_has_a_chinese_translation_with_the_same_fields():
    zh = {row[0]: row[1] for row in translations("zh_CN")}
    used = used_messages()
    assert len(used) > 20, "the scan found almost no messages: is the marking convention still T() and _()?"
    missing = sorted(f"{where}: {message!r}" for message, where in used.items() if message not in zh)
    assert not missing, "not in locale/zh_CN.csv:\n" + "\n".join(missing)
    wrong = sorted(f"{message!r} -> {zh[message]!r}" for message in used
                   if placeholders(message) != placeholders(zh[message]))
    assert not wrong, "a translation must keep the message's %(name)s fields:\n" + "\n".join(wrong)
    untranslated = sorted(m for m in used if zh[m] == m and CJK.search(m) is None and re.search("[A-Za-z]{3}", m))
    assert not untranslated, "a Chinese translation that is the English message:\n" + "\n".join(untranslated)


def test_no_translation_is_stale_or_given_twice():
    rows = translations("zh_CN")
    used = used_messages()
    stale = sorted(row[0] for row in rows if row[0] not in used)
    assert not stale, "in locale/zh_CN.csv but used nowhere:\n" + "\n".join(stale)
    seen: dict[str, str] = {}
    twice = []
    for message, translation, *_ in rows:
        if message in seen and seen[message] != translation:
            twice.append(f"{message!r}: {seen[message]!r} and {translation!r}")
        seen[message] = translation
    assert not twice, "one message, two translations:\n" + "\n".join(twice)
    assert translations("en_US") == [], "English is the source language: en_US.csv holds no translations"


def test_no_hand_written_chinese_outside_the_translations():
    """Chinese words are in locale/zh_CN.csv only, so no page shows a two-language label."""
    found = []
    scanned = list(files(".html", ".js", ".py"))
    assert "server/sandbox/templates/consent.html" in scanned and "server/sandbox/static/chat.js" in scanned
    assert "server/sandbox/oauth.py" in scanned and not any("jweixin" in path for path in scanned)
    for path in files(".html", ".js"):
        text = re.sub(r"{#.*?#}", "", read(path), flags=re.S)
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S) if path.endswith(".js") else text
        found += [f"{path}: {line.strip()}" for line in text.splitlines() if CJK.search(line)]
    for path in files(".py"):
        tree = ast.parse(read(path))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        content = {id(inner) for node in ast.walk(tree)
                   if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and (path, t.id) in CONTENT
                                                           for t in node.targets)
                   or isinstance(node, ast.FunctionDef) and (path, node.name) in CONTENT
                   for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value)
                    and id(node) not in docstrings | content and path != "server/i18n.py"):
                found.append(f"{path}:{node.lineno}: {node.value[:80]!r}")
    assert not found, "write it in English, mark it with T() or _(), translate it in locale/zh_CN.csv:\n" + "\n".join(found)


def test_language_names_come_from_the_environment_or_default_to_chinese():
    assert i18n.pick("en") == i18n.pick("en-GB") == i18n.pick("en_US.UTF-8") == "en_US"
    assert i18n.pick("zh-TW") == i18n.pick("zh") == "zh_CN"
    assert i18n.pick("fr") is None and i18n.pick("") is None and i18n.pick("../../etc") is None
    assert i18n.command_locale({}).code == "zh_CN"
    assert i18n.command_locale({"LANG": "C.UTF-8"}).code == "zh_CN"
    assert i18n.command_locale({"LANG": "en_US.UTF-8"}).code == "en_US"
    assert i18n.command_locale({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}).code == "zh_CN"


def test_a_text_renders_in_each_language_with_its_values():
    text = i18n.T("This page does not exist.")
    assert text.render(i18n.locale("zh_CN")) == "这个页面不存在。"
    assert text.render(i18n.locale("en_US")) == str(text) == "This page does not exist."


@pytest.mark.gen_test
async def test_pages_are_chinese_by_default_and_english_when_asked(http_client, app_url):
    async def page(path, **headers):
        response = await http_client.fetch(app_url + path, headers=headers, raise_error=False)
        return response, response.body.decode()

    response, body = await page("/no/such/page")
    assert response.code == 404 and "页面不存在" in body and 'lang="zh-CN"' in body
    assert "Accept-Language" in response.headers.get_list("Vary")
    _, body = await page("/no/such/page", **{"Accept-Language": "en-US,en;q=0.9"})
    assert "Page not found" in body and "页面不存在" not in body and 'lang="en-US"' in body
    _, body = await page("/no/such/page", **{"Accept-Language": "fr-FR"})  # a language we lack: Chinese
    assert "页面不存在" in body
    # WeChat's browser on a phone set to Chinese asks for zh-CN before English.
    _, body = await page("/no/such/page", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert "页面不存在" in body

    # The picker: ?lang= wins over the browser and is remembered in a cookie.
    response, body = await page("/no/such/page?lang=en_US&x=1", **{"Accept-Language": "zh-CN"})
    assert "Page not found" in body
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{i18n.LANG_COOKIE}=en_US;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    _, body = await page("/no/such/page", Cookie=f"{i18n.LANG_COOKIE}=en_US", **{"Accept-Language": "zh-CN"})
    assert "Page not found" in body
    # The links keep the page and its other arguments, never WeChat's one-time code.
    response, body = await page("/no/such/page?code=SECRETCODE&x=1")
    assert 'href="/no/such/page?x=1&amp;lang=en_US"' in body and "SECRETCODE" not in body
    # A cookie or argument naming nothing we have is ignored, never an error.
    response, body = await page("/no/such/page?lang=%3Cscript%3E", Cookie=f"{i18n.LANG_COOKIE}=xx")
    assert response.code == 404 and "页面不存在" in body and "<script>" not in body
    assert "Set-Cookie" not in response.headers


def test_the_browser_language_is_read_by_preference_and_region_free():
    assert i18n.browser_choice("en-GB,en;q=0.9") == "en_US"
    assert i18n.browser_choice("en") == "en_US"
    assert i18n.browser_choice("fr-FR,en;q=0.5,zh;q=0.8") == "zh_CN"  # French we lack; zh is preferred to en
    assert i18n.browser_choice("zh-TW;q=0.1, en-US;q=0.9") == "en_US"
    assert i18n.browser_choice("en;q=0, de") is None  # q=0 means "not this one"
    assert i18n.browser_choice("*, ;;;, en;q=abc") is None
    assert i18n.browser_choice("de," * 10_000 + "en") is None  # read only so far, and quickly


@pytest.mark.gen_test
async def test_the_answer_to_a_post_offers_no_language_links(http_client, app_url):
    """Its address is no page to open: a link there would be a GET to a form's action (a 405)."""
    response = await http_client.fetch(app_url + "/no/such/page", method="POST", body="x=1", raise_error=False)
    assert response.code == 403 and "无法访问" in response.body.decode()  # the xsrf check, in Chinese
    assert 'id="languages"' not in response.body.decode()
    response = await http_client.fetch(app_url + "/no/such/page", raise_error=False)
    assert 'id="languages"' in response.body.decode()
