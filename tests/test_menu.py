"""The custom menu: WeChat's limits, the builder, /admin/menu publishing to the stand-in, and `menu` commands."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sys

import pytest

from conftest import ADMIN_PASSWORD, ROOT, make_env
from handlers.admin.menu_form import menu_from_slots, slots_from_menu
from server import i18n
from server.i18n import T
from server.menus import menu_warnings
from server.wechat.menu import MenuInvalid, MenuProblem, check_menu, normalize_menu, parse_menu_json, validate_menu
from server.sandbox.api import validate_menu as sandbox_verdict

HOST = "http://127.0.0.1:8000"
ZH5 = "一二三四五"          # 15 bytes
ZH6 = "一二三四五六"        # 18 bytes


def leaf(name="成绩", kind="click", **extra) -> dict:
    button = {"type": kind, "name": name}
    button.update(extra or ({"key": "score"} if kind == "click" else {"url": "https://example.com/"} if kind == "view" else {}))
    return button


def menu(*buttons) -> dict:
    return {"button": list(buttons)}


def sub(name="更多", *subs) -> dict:
    return {"name": name, "sub_button": list(subs) or [leaf()]}


# (case id, menu, expected problems as (path, field, words in the message)); [] means valid.
LIMITS = [
    ("one click button", menu(leaf()), []),
    ("three top buttons with five subs each", menu(*[sub(f"菜单{i}", *[leaf(f"子{j}") for j in range(5)]) for i in range(3)]), []),
    ("top name of exactly 16 bytes", menu(leaf("abcdefghijklmnop")), []),
    ("top name of 5 Chinese characters", menu(leaf(ZH5)), []),
    ("sub name of exactly 60 bytes", menu(sub("更多", leaf("一" * 20))), []),
    ("key of exactly 128 bytes", menu(leaf(key="k" * 128)), []),
    ("url of exactly 1024 bytes", menu(leaf(kind="view", url="https://example.com/" + "a" * 1004)), []),
    ("miniprogram with all fields", menu(leaf("小程序", "miniprogram", url="https://example.com/", appid="wx286b93c14bbf93aa",
                                               pagepath="pages/index")), []),
    ("no buttons", menu(), [((), "button", "1 to 3 top-level buttons")]),
    ("four top buttons", menu(*[leaf(f"b{i}", key=f"k{i}") for i in range(4)]), [((), "button", "this one has 4")]),
    ("top name of 17 bytes", menu(leaf("abcdefghijklmnopq")), [((0,), "name", "17 bytes")]),
    ("top name of 6 Chinese characters", menu(leaf(ZH6)), [((0,), "name", "at most 16 bytes")]),
    ("parent name of 18 bytes", menu(sub(ZH6)), [((0,), "name", "18 bytes")]),
    ("sub name of 61 bytes", menu(sub("更多", leaf("一" * 20 + "x"))), [((0, 0), "name", "at most 60 bytes")]),
    ("empty name", menu(leaf("  ")), [((0,), "name", "missing")]),
    ("six sub buttons", menu(sub("更多", *[leaf(f"子{j}") for j in range(6)])), [((0,), "sub_button", "at most 5")]),
    ("key of 129 bytes", menu(leaf(key="k" * 129)), [((0,), "key", "129 bytes")]),
    ("click without key", menu({"type": "click", "name": "x"}), [((0,), "key", "needs a key")]),
    ("url of 1025 bytes", menu(leaf(kind="view", url="https://example.com/" + "a" * 1005)), [((0,), "url", "at most 1024")]),
    ("javascript url", menu(leaf(kind="view", url="javascript:alert(1)")), [((0,), "url", "http://")]),
    ("view without url", menu({"type": "view", "name": "x"}), [((0,), "url", "needs a URL")]),
    ("unknown type", menu(leaf(kind="dance", key="k")), [((0,), "type", "'dance'")]),
    ("no type and no subs", menu({"name": "x"}), [((0,), "type", "not a WeChat menu type")]),
    ("type and subs together", menu({**sub(), "type": "click", "key": "k"}), [((0,), "type", "cannot have a type")]),
    ("sub-sub buttons", menu(sub("更多", sub("深"))), [((0, 0), "sub_button", "cannot have sub-buttons")]),
    ("miniprogram without appid", menu(leaf("小程序", "miniprogram", url="https://example.com/", pagepath="p")),
     [((0,), "appid", "appid")]),
    ("problem deep inside", menu(leaf(), sub("更多", leaf(), leaf(), leaf("一" * 21))), [((1, 2), "name", "63 bytes")]),
    ("not a menu", ["button"], [((), "button", '{"button": [...]}')]),
]


SANDBOX_LENIENT = {"miniprogram without appid", "type and subs together"}


@pytest.mark.parametrize("case,candidate,expected", LIMITS, ids=[c[0] for c in LIMITS])
def test_menu_limits(case, candidate, expected):
    problems = validate_menu(normalize_menu(candidate))
    assert [(p.path, p.field) for p in problems] == [(path, field) for path, field, _ in expected]
    for problem, (_, _, words) in zip(problems, expected):
        assert words in str(problem.message)
    # Our verdict agrees with the stand-in's copy of WeChat's rules (server/sandbox/api.py), except
    # where the stand-in does not model a rule of docs/wechat-protocol.md §8.3.
    if isinstance(candidate, dict) and case not in SANDBOX_LENIENT:
        assert (sandbox_verdict(normalize_menu(candidate)) is None) == (not problems), case


def test_problem_messages_name_the_button_and_the_limit():
    with pytest.raises(MenuInvalid) as info:
        check_menu(menu(leaf(), sub("更多", leaf(), leaf(), leaf("一" * 21))))
    problem = info.value.problems[0]
    text = str(problem)  # English, as logs read it
    assert text.startswith("Button 2, sub-button 3:")
    assert "63 bytes" in text and "at most 60 bytes" in text and "a Chinese character counts 3" in text
    # A page renders it in its reader's language: Chinese by default, English when asked.
    assert i18n.say(problem.text, i18n.locale("zh_CN")) == "按钮 2 › 子按钮 3：名称 63 字节，子菜单最多 60 字节（一个汉字占 3 字节）"
    assert i18n.say(problem.text, i18n.locale("en_US")) == text
    assert i18n.say(MenuProblem((0,), "name", T("x")).where, i18n.locale("zh_CN")) == "按钮 1"
    assert str(MenuProblem((0,), "name", T("x")).where) == "Button 1"


def test_menu_get_output_is_accepted_as_input():
    published = {"menu": {"button": [{"type": "click", "name": " 成绩 ", "key": "score", "sub_button": []},
                                     {"name": "更多", "sub_button": [{"type": "view", "name": "主页", "url": "https://e.com/",
                                                                      "sub_button": []}]}]}}
    assert check_menu(published) == {"button": [{"type": "click", "name": "成绩", "key": "score"},
                                                {"name": "更多", "sub_button": [{"type": "view", "name": "主页",
                                                                                 "url": "https://e.com/"}]}]}


@pytest.mark.parametrize("text,words", [
    ('{"button": [', "line 1"),
    ('{\n  "button": [\n    {"type": "click",, }\n  ]\n}', "at line 3, column 22"),
    ("", "not valid JSON"),
])
def test_broken_json_says_where(text, words):
    with pytest.raises(MenuInvalid) as info:
        parse_menu_json(text)
    assert words in str(info.value)


# ---- the builder -----------------------------------------------------------------------------------

def test_builder_makes_view_links_from_state_entries():
    form = {"b0_name": "我的", "b0_kind": "view", "b0_key": "me",
            "b1_name": "成绩", "b1_kind": "click", "b1_key": "score",
            "b2_name": "更多", "b2_kind": "sub",
            "b2s0_name": "官网", "b2s0_kind": "url", "b2s0_url": "https://example.com/",
            "b2s1_name": "", "b2s1_kind": "",
            "b2s2_name": "绑定学号", "b2s2_kind": "view", "b2s2_key": "bind"}
    built, errors = menu_from_slots(form, HOST)
    assert errors == {}
    assert built == {"button": [
        {"type": "view", "name": "我的", "url": f"{HOST}/wx/go/me"},
        {"type": "click", "name": "成绩", "key": "score"},
        {"name": "更多", "sub_button": [{"type": "view", "name": "官网", "url": "https://example.com/"},
                                        {"type": "view", "name": "绑定学号", "url": f"{HOST}/wx/go/bind"}]},
    ]}
    again, complete = slots_from_menu(built, HOST)
    assert complete and menu_from_slots(again, HOST) == (built, {})


@pytest.mark.parametrize("form,field,words", [
    ({"b0_name": ZH6, "b0_kind": "click", "b0_key": "score"}, "b0_name", "at most 16 bytes"),
    ({"b0_name": "更多", "b0_kind": "sub", "b0s1_name": "一" * 21, "b0s1_kind": "click", "b0s1_key": "score"}, "b0s1_name", "60"),
    ({"b0_name": "更多", "b0_kind": "sub"}, "b0_kind", "at least one sub-button"),
    ({"b0_name": "成绩", "b0_kind": "click"}, "b0_key", "choose an entry"),
    ({"b1_name": "成绩", "b1_kind": ""}, "b1_kind", "choose what the button does"),
    ({"b0_name": "官网", "b0_kind": "url", "b0_url": "ftp://example.com/"}, "b0_url", "http://"),
    ({}, "b0_name", "at least one button"),
])
def test_builder_errors_point_at_the_field(form, field, words):
    _, errors = menu_from_slots(form, HOST)
    assert words in str(errors.get(field, "")), errors


def test_warnings_for_buttons_that_lead_nowhere():
    warnings = menu_warnings(menu(leaf(key="gone"), leaf("我的", "view", url=f"{HOST}/wx/go/missing"), leaf("好", key="score")),
                             ["score"], HOST)
    assert len(warnings) == 2 and "'gone'" in str(warnings[0]) and "'missing'" in str(warnings[1])
    assert i18n.say(warnings[0], i18n.locale()).startswith("按钮 1：键 'gone' 不在状态表中")


def test_builder_says_when_it_cannot_show_a_menu():
    form, complete = slots_from_menu(menu(leaf("扫码", "scancode_push", key="scan")), HOST)
    assert not complete and form["b0_name"] == "扫码"


# ---- /admin/menu against the stand-in ------------------------------------------------------------------

@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
def signed_in(io_loop, admin, sandbox, services):
    async def setup():
        for key, page, title in (("me", "/wx/page/me", "我的资料"), ("score", "/wx/page/bind", "查成绩")):
            await services.store.set_state(key, {"page": page, "title": title, "keywords": [], "scope": "snsapi_base"}, by="t")
        await admin.login()
    io_loop.run_sync(setup)
    return admin


BUILT = {"b0_name": "我的", "b0_kind": "view", "b0_key": "me", "b1_name": "更多", "b1_kind": "sub",
         "b1s0_name": "查成绩", "b1s0_kind": "click", "b1s0_key": "score"}


@pytest.mark.gen_test
async def test_builder_save_then_publish_reaches_wechat(signed_in, sandbox, services, config):
    response = await signed_in.post("/admin/menu", {**BUILT, "source": "builder", "action": "save"})
    assert response.status == 303 and response.headers["Location"] == "/admin/menu?done=saved"
    expected = {"button": [{"type": "view", "name": "我的", "url": f"{config.app_host}/wx/go/me"},
                           {"name": "更多", "sub_button": [{"type": "click", "name": "查成绩", "key": "score"}]}]}
    assert await services.store.get_setting("menu") == expected
    assert sandbox.menu is None
    page = (await signed_in.get("/admin/menu?done=saved")).text_body
    assert "菜单已保存（尚未发布）" in page and 'id="remote-none"' in page  # Chinese, the default
    english = (await signed_in.get("/admin/menu?done=saved&lang=en_US")).text_body
    assert "Menu saved (not published yet)" in english and "<h1>Custom menu</h1>" in english
    assert "菜单" not in english.split('id="languages"')[0]  # no Chinese word left but the picker's
    assert "<h1>Custom menu</h1>" in (await signed_in.get("/admin/menu")).text_body  # the choice is remembered
    assert "<h1>自定义菜单</h1>" in (await signed_in.get("/admin/menu?lang=zh_CN")).text_body
    assert re.search(r'<div class="wx-menubar">.*我的.*更多.*</div>', page, re.S)
    response = await signed_in.post("/admin/menu/publish")
    assert response.status == 303 and response.headers["Location"] == "/admin/menu?done=published"
    assert sandbox.menu == expected
    page = (await signed_in.get("/admin/menu?done=published")).text_body
    remote = json.loads(html.unescape(re.search(r'<pre class="code" id="remote-menu">(.*?)</pre>', page, re.S).group(1)))
    assert remote == expected
    audit = [doc["action"] for doc in await services.store.recent_audit(5)]
    assert audit[:2] == ["menu.publish", "setting.set"]


@pytest.mark.gen_test
async def test_preview_shows_the_menu_without_saving(signed_in, services):
    form = {**BUILT, "b0_name": "我的资料很长很长"}  # 24 bytes > 16
    response = await signed_in.post("/admin/menu", {**form, "source": "builder", "action": "preview"})
    assert response.status == 400
    assert "一级菜单最多 16 字节" in response.text_body and 'id="b0_name-error"' in response.text_body
    assert 'value="我的资料很长很长"' in response.text_body  # the edit is kept
    response = await signed_in.post("/admin/menu", {**BUILT, "b0_name": "我的资料", "source": "builder", "action": "preview"})
    assert response.status == 200 and "这是预览，尚未保存" in response.text_body
    assert 'title="我的资料">我的资料</span>' in response.text_body
    long_sub = {**BUILT, "b1s0_name": "一二三四五六七八九十"}
    response = await signed_in.post("/admin/menu", {**long_sub, "source": "builder", "action": "preview"})
    assert '<li title="一二三四五六七八九十">一二三四五六七八…</li>' in response.text_body  # as WeChat cuts it
    assert await services.store.get_setting("menu") is None


@pytest.mark.gen_test
async def test_json_editing_with_errors_lists_them_and_saves_nothing(signed_in, services, sandbox):
    bad = json.dumps(menu(leaf(ZH6), leaf(key="k" * 129)), ensure_ascii=False)
    response = await signed_in.post("/admin/menu", {"source": "json", "action": "publish", "menu_json": bad})
    assert response.status == 400
    problems = re.search(r'<ul class="field-error" id="json-problems"[^>]*>(.*?)</ul>', response.text_body, re.S).group(1)
    assert "按钮 1：" in html.unescape(problems) and "按钮 2：" in html.unescape(problems)
    assert html.escape(bad) in response.text_body  # the typed JSON is kept
    assert await services.store.get_setting("menu") is None and sandbox.menu is None


@pytest.mark.gen_test
async def test_json_save_and_publish_in_one_click(signed_in, services, sandbox):
    good = menu(leaf("成绩", key="score"), leaf("官网", "view", url="https://example.com/"))
    response = await signed_in.post("/admin/menu", {"source": "json", "action": "publish",
                                                    "menu_json": json.dumps(good, ensure_ascii=False)})
    assert response.status == 303 and response.headers["Location"] == "/admin/menu?done=published"
    assert sandbox.menu == good and await services.store.get_setting("menu") == good


@pytest.mark.gen_test
async def test_wechat_refusal_is_explained_and_the_menu_stays_saved(signed_in, services, sandbox):
    sandbox.fail("/cgi-bin/menu/create", errcode=45009)
    response = await signed_in.post("/admin/menu", {**BUILT, "source": "builder", "action": "publish"})
    assert response.status == 502
    assert "errcode 45009" in response.text_body and "今天的接口调用次数已用完" in response.text_body
    assert "菜单已保存，可稍后再发布" in response.text_body
    assert await services.store.get_setting("menu") is not None and sandbox.menu is None


@pytest.mark.gen_test
async def test_expired_token_during_publish_is_refreshed_once(signed_in, services, sandbox):
    await signed_in.post("/admin/menu", {**BUILT, "source": "builder", "action": "save"})
    await services.tokens.token()
    sandbox.advance(7200)  # the cached token expires on WeChat's side only
    response = await signed_in.post("/admin/menu/publish")
    assert response.status == 303 and sandbox.menu is not None
    assert sandbox.calls["/cgi-bin/stable_token"] == 2 and sandbox.calls["/cgi-bin/menu/create"] == 2


@pytest.mark.gen_test
async def test_publish_without_a_saved_menu_says_so(signed_in, sandbox):
    response = await signed_in.post("/admin/menu/publish")
    assert response.status == 400 and "还没有保存的菜单" in response.text_body
    assert sandbox.calls["/cgi-bin/menu/create"] == 0


# ---- the command line -----------------------------------------------------------------------------------

async def run_cli(env: dict, *args: str) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("WX_", "MONGODB_")) and k not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")}
    full_env.update(env)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", *args, cwd=ROOT, env=full_env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def cli_env(http_port, wechat_port, db_name, mongo_uri):
    # These tests read the commands' English (a terminal without LANG reads Chinese).
    return make_env(http_port, wechat_port, db_name, MONGODB_URI=mongo_uri, LANG="en_US.UTF-8",
                    LC_ALL="en_US.UTF-8")


@pytest.fixture
def menu_file(tmp_path):
    def write(content, name="menu.json") -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), encoding="utf-8")
        return str(path)
    return write


GOOD = menu(leaf("成绩", key="score"), sub("更多", leaf("官网", "view", url="https://example.com/")))


@pytest.mark.gen_test(timeout=60)
async def test_cli_publishes_a_file(cli_env, sandbox, menu_file, services):
    code, out, err = await run_cli(cli_env, "menu", "publish", menu_file(GOOD))
    assert code == 0, err
    assert "published" in out and sandbox.menu == GOOD
    assert "warning: Button 1" in err and "'score'" in err  # no such state entry yet
    assert (await services.store.recent_audit(1))[0]["who"] == "cli"
    code, out, err = await run_cli(cli_env, "menu", "show")
    assert code == 0 and json.loads(out) == GOOD


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("content,words", [
    ('{"button": [', "not valid JSON at line 1, column 13"),
    (menu(leaf(ZH6)), "Button 1: "),
    (menu(leaf(), leaf(key="k" * 129)), "Button 2: "),
    ("[1, 2]", '{"button": [...]}'),
    (None, "cannot read"),
    (b"\xff\xfe", "not UTF-8"),
])
async def test_cli_refuses_a_bad_file_with_exit_code_2(cli_env, sandbox, menu_file, tmp_path, content, words):
    if content is None:
        path = str(tmp_path / "missing.json")
    elif isinstance(content, bytes):
        path = str(tmp_path / "binary.json")
        (tmp_path / "binary.json").write_bytes(content)
    else:
        path = menu_file(content)
    code, out, err = await run_cli(cli_env, "menu", "publish", path)
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err
    assert sandbox.menu is None and sandbox.calls["/cgi-bin/stable_token"] == 0


@pytest.mark.gen_test(timeout=60)
async def test_cli_saves_then_publishes_the_saved_menu(cli_env, sandbox, menu_file, services):
    code, _, err = await run_cli(cli_env, "menu", "publish")
    assert code == 2 and "no menu saved yet" in err
    code, out, err = await run_cli(cli_env, "menu", "save", menu_file(GOOD))
    assert code == 0 and "not published yet" in out and sandbox.menu is None
    code, out, _ = await run_cli(cli_env, "menu", "show", "--saved")
    assert code == 0 and json.loads(out) == GOOD
    code, out, err = await run_cli(cli_env, "menu", "publish")
    assert code == 0 and "published the saved menu" in out and sandbox.menu == GOOD


@pytest.mark.gen_test(timeout=60)
async def test_cli_reports_wechat_refusal_with_exit_code_1(cli_env, sandbox, menu_file):
    sandbox.fail("/cgi-bin/menu/create", errcode=48001)
    code, out, err = await run_cli(cli_env, "menu", "publish", menu_file(GOOD))
    assert code == 1 and "errcode 48001" in err and "Traceback" not in err


@pytest.mark.gen_test(timeout=60)
async def test_cli_never_prints_the_access_token(cli_env, sandbox, menu_file, services):
    code, out, err = await run_cli(cli_env, "menu", "publish", menu_file(GOOD))
    assert code == 0
    token = (await services.store.cached_token(sandbox.appid))["token"]
    assert token not in out and token not in err
