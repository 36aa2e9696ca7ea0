"""A newcomer's walk through `python -m server --sandbox` in Chromium: chat → link → consent → page."""

from __future__ import annotations

import os

import pytest

from browser import launch, phone, require_chromium
from procs import ServerProcess, clean_env
from server.embedded import free_port


@pytest.fixture
def sandbox_server(tmp_path):
    require_chromium()
    port, wechat_port = free_port(), free_port()
    server = ServerProcess(clean_env(WX_DATA_DIR=str(tmp_path / "data")), ["--sandbox", "--sandbox-port", str(wechat_port)],
                           port=port).start()
    yield server, f"http://127.0.0.1:{wechat_port}"
    assert server.stop() == 0


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
            page.wait_for_url(f"{server.url}/wx/page/bind*")
            expect(page.locator("h1")).to_contain_text("绑定")
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
