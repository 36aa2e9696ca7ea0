"""Languages in a real Chromium: the admin follows the browser's language, the picker switches it and
the choice is remembered (the wx_lang cookie); Chinese is the default."""

from __future__ import annotations

import os
import re

import pytest

from browser import desktop
from conftest import ADMIN_PASSWORD
from procs import admin_site

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def site(chromium, mongo_uri):
    with admin_site(mongo_uri, ADMIN_PASSWORD) as (server, wechat):
        yield server, wechat


@pytest.fixture
def new_page(chromium):
    """new_page(locale): a PC browser whose Accept-Language is that locale's; all closed afterwards."""
    made: list = []
    errors: list[str] = []

    def new(locale: str):
        context = chromium.new_context(**desktop(locale=locale))
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        page = context.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        return page

    yield new
    for context in made:
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def shot(page, output_dir, name: str) -> None:
    page.screenshot(path=os.path.join(output_dir, f"languages-{name}.png"), full_page=True)


def sign_in(page, server) -> None:
    page.goto(server.url + "/admin/login")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r"/admin/states"))


def test_a_chinese_browser_gets_chinese_and_english_is_picked_and_remembered(new_page, site, output_dir):
    from playwright.sync_api import expect

    server, _ = site
    page = new_page("zh-CN")
    page.goto(server.url + "/admin/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("管理员登录")
    expect(page.locator("#login")).to_have_text("登录")
    sign_in(page, server)
    page.goto(server.url + "/admin/menu")
    expect(page.locator("h1")).to_have_text("自定义菜单")
    expect(page.locator(".admin-bar nav a[href='/admin/menu']")).to_have_text("菜单")
    expect(page.locator("#logout")).to_have_text("退出")
    # The picker: under the page, each language named in its own words, the current one marked.
    picker = page.locator("#languages")
    expect(picker).to_be_visible()
    expect(picker.locator("a[aria-current]")).to_have_text("中文")
    shot(page, output_dir, "admin-zh")

    picker.get_by_text("English").click()
    page.wait_for_url(re.compile(r"/admin/menu\?lang=en_US$"))
    expect(page.locator("html")).to_have_attribute("lang", "en-US")
    expect(page.locator("h1")).to_have_text("Custom menu")
    expect(page.locator(".admin-bar nav a[href='/admin/menu']")).to_have_text("Menu")
    expect(page.locator("#logout")).to_have_text("Sign out")
    expect(page.locator("#languages a[aria-current]")).to_have_text("English")
    body = page.locator("main").inner_text()
    assert not re.search(r"[\u4e00-\u9fff]", body), body  # nothing Chinese is left on the admin's own page
    assert [c["value"] for c in page.context.cookies() if c["name"] == "wx_lang"] == ["en_US"]

    # The next page opened (from the navigation, no ?lang=) is English too: the choice is remembered.
    page.click("#nav-admins")
    page.wait_for_url(re.compile(r"/admin/admins$"))
    expect(page.locator("h1")).to_have_text("Admins")
    expect(page.locator("#invite h2")).to_have_text("Invite an admin")
    expect(page.locator("#invite-button")).to_have_text("Create the invitation link")
    shot(page, output_dir, "admin-en")
    page.goto(server.url + "/admin/me")
    expect(page.locator("h1")).to_contain_text("My account")

    # And back: 中文 is remembered the same way.
    page.locator("#languages").get_by_text("中文").click()
    expect(page.locator("h1")).to_contain_text("我的账号")
    page.goto(server.url + "/admin/menu")
    expect(page.locator("h1")).to_have_text("自定义菜单")


def test_an_english_browser_sees_english_from_the_start(new_page, site):
    from playwright.sync_api import expect

    server, _ = site
    page = new_page("en-US")
    page.goto(server.url + "/admin/login")
    expect(page.locator("html")).to_have_attribute("lang", "en-US")
    expect(page.locator("h1")).to_have_text("Admin sign-in")
    expect(page.locator("label[for=password]")).to_have_text("Password")
    expect(page.locator("#scan-login")).to_have_text("Sign in with WeChat")
    expect(page.locator("#languages a[aria-current]")).to_have_text("English")
    assert not [c for c in page.context.cookies() if c["name"] == "wx_lang"]  # nothing picked, nothing stored
    sign_in(page, server)
    page.goto(server.url + "/admin/menu")
    expect(page.locator("h1")).to_have_text("Custom menu")
    expect(page.locator("#builder legend").first).to_have_text("Button 1")
