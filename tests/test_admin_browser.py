"""/admin in a real Chromium (Playwright): sign in, edit the map, chat in the stand-in, publish the menu, lockout."""

from __future__ import annotations

import os
import re

import pytest

from browser import phone
from conftest import ADMIN_PASSWORD, SECRET
from procs import admin_site

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def site(chromium, mongo_uri):
    """One server process (real `python -m server`) and one stand-in WeChat for the whole module."""
    with admin_site(mongo_uri, ADMIN_PASSWORD) as (server, wechat):
        yield server, wechat
    assert SECRET not in server.log and ADMIN_PASSWORD not in server.log


@pytest.fixture
def page(chromium, site):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation (static/js/admin.js)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    # A Content-Security-Policy violation shows up as a console error: there must be none.
    assert not [e for e in errors if "Content Security Policy" in e], errors


def sign_in(page, server) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/admin")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")
    expect(page.locator("h1")).to_have_text("状态表")  # the context's locale is zh-CN


def shot(page, output_dir, name: str) -> None:
    page.screenshot(path=os.path.join(output_dir, f"admin-{name}.png"), full_page=True)


def test_sign_in_edit_the_map_and_the_follower_gets_the_new_link(page, site, output_dir):
    from playwright.sync_api import expect

    server, wechat = site
    page.goto(server.url + "/admin/login")
    shot(page, output_dir, "login")
    sign_in(page, server)

    # A hostile page is refused beside the field, and the typed values stay.
    page.fill("#key", "grades")
    page.fill("#page", "//evil.example/steal")
    page.fill("#title", "查成绩")
    page.fill("#keywords", "成绩, grades")
    page.click("#save")
    expect(page.locator("#page-error")).to_contain_text("'//'")
    expect(page.locator("#key")).to_have_value("grades")
    expect(page.locator("#title")).to_have_value("查成绩")
    shot(page, output_dir, "states-error")

    page.fill("#page", "/wx/page/bind")
    page.click("#save")
    expect(page.locator("#notice")).to_contain_text("已保存 “grades”")
    expect(page.locator("#state-grades")).to_contain_text("/wx/page/bind")
    expect(page.locator("#state-grades")).to_contain_text("admin@127.0.0.1")
    shot(page, output_dir, "states")

    # The follower, in the stand-in's chat page, gets the new entry's link.
    chat = page.context.browser.new_context(**phone()).new_page()
    chat.goto(wechat.url + "/")
    chat.fill("#text", "成绩")
    chat.click("#send")
    link = chat.locator('#log a[href$="/wx/go/grades"]')
    expect(link).to_have_text("查成绩")
    assert link.get_attribute("href") == f"{server.url}/wx/go/grades"
    chat.screenshot(path=os.path.join(output_dir, "admin-chat-reply.png"), full_page=True)

    # Edit, then delete: the follower then gets the default reply.
    page.click("#state-grades a:has-text('编辑')")
    page.fill("#title", "我的成绩")
    page.click("#save")
    expect(page.locator("#state-grades")).to_contain_text("我的成绩")
    page.click("#state-grades button:has-text('删除')")
    expect(page.locator("#notice")).to_contain_text("已删除 “grades”")
    expect(page.locator("#state-grades")).to_have_count(0)
    chat.fill("#text", "成绩")
    chat.click("#send")
    expect(chat.locator("#log .row.account").last).to_contain_text("没有找到")

    page.goto(server.url + "/admin/audit")
    expect(page.locator("#audit tbody tr")).to_have_count(3)
    expect(page.locator("#audit")).to_contain_text("state.delete")
    shot(page, output_dir, "audit")


def test_build_publish_and_tap_the_menu(page, site, output_dir):
    from playwright.sync_api import expect

    server, wechat = site
    sign_in(page, server)
    page.fill("#key", "me")
    page.fill("#page", "/wx/page/me")
    page.fill("#title", "我的资料")
    page.fill("#keywords", "我的")
    page.click("#save")
    expect(page.locator("#state-me")).to_be_visible()

    page.goto(server.url + "/admin/menu")
    expect(page.locator("#remote-none")).to_be_visible()
    page.fill("#b0_name", "我的")
    page.select_option("#b0_kind", "click")
    page.select_option("#b0_key", "me")
    page.fill("#b1_name", "更多")
    page.select_option("#b1_kind", "sub")
    page.fill("#b1s0_name", "打开我的资料")
    page.select_option("#b1s0_kind", "view")
    page.select_option("#b1s0_key", "me")
    # A name over WeChat's limit is shown beside the field, nothing is saved.
    page.fill("#b2_name", "这是一个很长的名字")
    page.select_option("#b2_kind", "url")
    page.fill("#b2_url", "https://example.com/")
    page.click("#builder-preview")
    expect(page.locator("#b2_name-error")).to_contain_text("一级菜单最多 16 字节")
    shot(page, output_dir, "menu-error")
    page.fill("#b2_name", "官网")
    page.click("#builder-preview")
    expect(page.locator(".wx-menubar")).to_contain_text("官网")
    expect(page.locator("#notice")).to_contain_text("这是预览")
    page.click("#builder-publish")
    expect(page.locator("#notice")).to_contain_text("菜单已发布到微信")
    expect(page.locator("#remote-menu")).to_contain_text(f"{server.url}/wx/go/me")
    shot(page, output_dir, "menu")

    published = wechat.read(lambda sb: sb.menu)
    assert published == {"button": [
        {"type": "click", "name": "我的", "key": "me"},
        {"name": "更多", "sub_button": [{"type": "view", "name": "打开我的资料", "url": f"{server.url}/wx/go/me"}]},
        {"type": "view", "name": "官网", "url": "https://example.com/"},
    ]}
    assert wechat.read(lambda sb: sb.calls["/cgi-bin/stable_token"]) == 1

    # The follower's menu bar now has the buttons; tapping "我的" answers with the entry's link.
    chat = page.context.browser.new_context(**phone()).new_page()
    chat.goto(wechat.url + "/")
    chat.click("#menu button:has-text('我的')")
    expect(chat.locator('#log a[href$="/wx/go/me"]').last).to_have_text("我的资料")


def test_users_and_replies_pages(page, site, output_dir):
    from playwright.sync_api import expect

    server, wechat = site
    sign_in(page, server)
    page.goto(server.url + "/admin/replies")
    page.fill("#default_reply", "请回复：{keywords}")
    page.click("#save")
    expect(page.locator("#notice")).to_have_text("已保存。")
    shot(page, output_dir, "replies")
    page.goto(server.url + "/admin/users")
    expect(page.locator("#login-chart rect")).to_have_count(30)
    expect(page.locator("#page-info")).to_contain_text("第 1 / 1 页")
    shot(page, output_dir, "users")
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/admin/login\?out=1"))
    page.goto(server.url + "/admin/users")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_five_wrong_passwords_lock_sign_in(page, site, output_dir):
    """Last in this module: the lock applies to the address all these tests come from."""
    from playwright.sync_api import expect

    server, _ = site
    page.goto(server.url + "/admin/login")
    for attempt in range(1, 5):
        page.fill("#password", f"wrong {attempt}")
        page.click("#login")
        expect(page.locator("#password-error")).to_contain_text(f"还可尝试 {5 - attempt} 次")
    page.fill("#password", "wrong 5")
    page.click("#login")
    expect(page.locator("#password-error")).to_contain_text("登录失败次数过多")
    expect(page.locator("#login")).to_be_disabled()
    shot(page, output_dir, "locked")
    page.goto(server.url + "/admin/login")
    expect(page.locator("#password-error")).to_contain_text("秒后再试")
