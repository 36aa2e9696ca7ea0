"""A newcomer's walk through `python -m server --sandbox` in Chromium: chat → link → consent → page."""

from __future__ import annotations

import os

import pytest

from browser import desktop, launch, phone, require_chromium
from procs import sandbox_site


@pytest.fixture
def sandbox_server(tmp_path):
    require_chromium()
    with sandbox_site(tmp_path / "data") as site:
        yield site


def test_follower_goes_from_chat_to_business_pages(sandbox_server, output_dir):
    from playwright.sync_api import expect, sync_playwright

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(**phone())
            page.goto(wechat + "/")
            # A text message that matches a keyword gets a link (base scope: silent authorization).
            page.fill("#text", "成绩")
            page.click("#send")
            link = page.locator("#log a", has_text="查成绩")
            expect(link).to_have_attribute("href", f"{server.url}/wx/go/score")
            page.screenshot(path=os.path.join(output_dir, "sandbox-chat.png"))
            link.click()
            # Browsers carry the authorize URL's #wechat_redirect fragment across the redirects.
            # Not bound yet: the grades page sends the follower to bind a student number first...
            page.wait_for_url(f"{server.url}/wx/page/bind?next=*")
            expect(page.locator("h1")).to_contain_text("绑定")
            expect(page.locator("#demo-students")).to_contain_text("2023001")
            page.fill("#student_no", "2023001")
            page.locator("button[type=submit]").click()
            # ...and saving brings them back to their grades, read from the seeded `grades` collection.
            page.wait_for_url(f"{server.url}/wx/page/grades")
            expect(page.locator("#student-no")).to_have_text("2023001")
            expect(page.locator("#grades tbody tr")).to_have_count(3)
            expect(page.locator("#grades")).to_contain_text("程序设计")
            page.screenshot(path=os.path.join(output_dir, "sandbox-grades.png"), full_page=True)
            # The menu button 我的 sends a CLICK event; its link needs the profile (consent page).
            page.goto(wechat + "/")
            page.locator("#menu button", has_text="我的").first.click()
            page.locator("#log a", has_text="我的资料").last.click()
            page.wait_for_url(f"{wechat}/connect/oauth2/authorize?**")
            page.screenshot(path=os.path.join(output_dir, "sandbox-consent.png"))
            page.locator("button[value=allow]").click()
            page.wait_for_url(f"{server.url}/wx/page/me*")
            expect(page.locator(".nickname")).to_have_text("Alice 小明")
            page.screenshot(path=os.path.join(output_dir, "sandbox-me.png"), full_page=True)
        finally:
            browser.close()


def test_the_chat_menu_is_the_menu_the_admin_published(sandbox_server, output_dir):
    from playwright.sync_api import expect, sync_playwright

    import wxconfig

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            phone_page = browser.new_page(**phone())
            phone_page.goto(wechat + "/")
            expect(phone_page.locator("#menu > button")).to_have_text(["我的", "成绩", "更多"])
            admin = browser.new_page()
            admin.goto(server.url + "/admin/menu")
            admin.fill("#password", wxconfig.SANDBOX_ADMIN_PASSWORD)
            admin.click("#login")
            admin.wait_for_url(server.url + "/admin/menu")
            # The admin page reads WeChat's copy (menu/get at the stand-in): the same three buttons.
            expect(admin.locator("#remote-menu")).to_contain_text('"name": "成绩"')
            expect(admin.locator("#remote-none")).to_have_count(0)
            admin.fill("input[name=b0_name]", "资料")
            admin.click("#builder-publish")
            admin.wait_for_url(server.url + "/admin/menu?done=published*")  # the form keeps its #builder
            phone_page.reload()
            expect(phone_page.locator("#menu > button")).to_have_text(["资料", "成绩", "更多"])
            phone_page.screenshot(path=os.path.join(output_dir, "sandbox-published-menu.png"))
        finally:
            browser.close()


def test_one_machine_shows_the_pc_flow_with_two_desktop_browsers(sandbox_server, output_dir):
    """The quick start's PC flow: a private window is the PC, the chat page's tab is the phone."""
    from playwright.sync_api import expect, sync_playwright

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            pc = browser.new_context(**desktop()).new_page()
            pc.goto(server.url + "/wx/go/me")
            expect(pc.locator("h1")).to_contain_text("用微信扫码继续")
            scan_url = pc.locator("#scan-url").get_attribute("href")
            # The phone: the same desktop User-Agent, but the chat page marked its browser as the phone.
            phone_page = browser.new_context(**desktop()).new_page()
            phone_page.goto(wechat + "/")
            phone_page.fill("#scan-input", scan_url)
            phone_page.click("#scan")
            phone_page.wait_for_url(f"{wechat}/connect/oauth2/authorize?**")  # 我的 needs the profile
            phone_page.locator("button[value=allow]").click()
            phone_page.wait_for_url(scan_url + "*")
            expect(phone_page.locator("h1")).to_contain_text("在电脑上登录")
            phone_page.click("#scan-confirm")
            # The PC page moves on by itself, signed in as the phone's follower.
            pc.wait_for_url(server.url + "/wx/page/me*")
            expect(pc.locator(".nickname")).to_have_text("Alice 小明")
            pc.screenshot(path=os.path.join(output_dir, "sandbox-pc-signed-in.png"))
        finally:
            browser.close()
