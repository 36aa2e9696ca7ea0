"""Share cards in Chromium against `python -m server --sandbox`: the stand-in's JS-SDK checks wx.config as WeChat does."""

from __future__ import annotations

import json
import os
import urllib.request
from urllib.parse import quote

import pytest

from browser import launch, phone, require_chromium
from procs import sandbox_site

# WeChat on an iPhone (docs/wechat-protocol.md §17.1): the stand-in then verifies the landing URL (§15.5).
IOS_WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Mobile/15E148 MicroMessenger/8.0.48(0x18003030) NetType/WIFI Language/zh_CN")


@pytest.fixture
def sandbox_server(tmp_path):
    require_chromium()
    with sandbox_site(tmp_path / "data") as site:
        yield site


def stand_in_calls(wechat: str) -> dict:
    with urllib.request.urlopen(wechat + "/_sandbox/calls", timeout=5) as response:
        return json.loads(response.read())


def bind_and_open_grades(page, server) -> None:
    """The follower opens the grades page in WeChat: signed in silently, binds, comes back."""
    page.goto(server.url + "/wx/page/grades")
    page.wait_for_url(f"{server.url}/wx/page/bind?next=*")
    page.fill("#student_no", "2023001")
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{server.url}/wx/page/grades")


def test_a_business_page_sets_its_share_card(sandbox_server, output_dir):
    from playwright.sync_api import expect, sync_playwright

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(**phone()).new_page()
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(f"{msg.text} {msg.location.get('url')}")
                    if msg.type == "error" else None)
            bind_and_open_grades(page, server)
            # The stand-in's jweixin checked the signature with its server and shows the card it was given.
            card = page.locator("#wx-sandbox-share")
            expect(card.locator(".updateAppMessageShareData")).to_have_attribute("data-title", "查成绩")
            expect(card.locator(".updateAppMessageShareData")).to_have_attribute("data-link", f"{server.url}/wx/go/score")
            expect(card.locator(".updateTimelineShareData")).to_have_attribute("data-link", f"{server.url}/wx/go/score")
            expect(card).to_contain_text("查成绩")
            expect(page.locator("#wx-share")).to_have_attribute("data-state", "ready")
            expect(page.locator("#wx-sandbox-error")).to_have_count(0)
            page.screenshot(path=os.path.join(output_dir, "sandbox-share-card.png"), full_page=True)
            # No CSP violation or failed script: the JS-SDK came from the one URL allowed (the site has no favicon).
            assert [line for line in problems if not line.endswith("/favicon.ico")] == []
            calls = stand_in_calls(wechat)
            assert calls["/cgi-bin/ticket/getticket"] == 1 and calls["/js/verify"] == 1
        finally:
            browser.close()


# A page script that rewrites the URL before share.js runs, as a client-side router does (§15.5).
REWRITE_URL = 'history.replaceState(null, "", location.pathname + "?tab=recent");'


@pytest.mark.parametrize("user_agent, re_signed", [(None, True), (IOS_WECHAT_UA, False)], ids=["android", "ios"])
def test_a_rewritten_url_is_signed_for_the_url_wechat_verifies(sandbox_server, user_agent, re_signed):
    """Android WeChat verifies the current URL: share.js has /wx/jsconfig sign the rewritten one.
    iOS WeChat verifies the landing URL, the one the server signed: re-signing would break it."""
    from playwright.sync_api import expect, sync_playwright

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(**phone(**({"user_agent": user_agent} if user_agent else {}))).new_page()
            bind_and_open_grades(page, server)
            expect(page.locator("#wx-share")).to_have_attribute("data-state", "ready")
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url) if "/wx/jsconfig" in request.url else None)
            page.add_init_script(REWRITE_URL)
            page.reload()
            expect(page).to_have_url(f"{server.url}/wx/page/grades?tab=recent")
            expect(page.locator("#wx-share")).to_have_attribute("data-state", "ready")
            expect(page.locator("#wx-sandbox-share .updateAppMessageShareData")).to_have_attribute(
                "data-link", f"{server.url}/wx/go/score")
            expect(page.locator("#wx-sandbox-error")).to_have_count(0)
            rewritten = quote(f"{server.url}/wx/page/grades?tab=recent", safe="")
            assert asked == ([f"{server.url}/wx/jsconfig?url={rewritten}"] if re_signed else [])
        finally:
            browser.close()


def test_a_ticket_wechat_no_longer_honours_shows_config_invalid_signature(sandbox_server, output_dir):
    """The page's signature is wrong: here made with a ticket the stand-in has let expire (its
    clock moved on 2 hours, ours did not), as a cache that outlived its ticket would."""
    from playwright.sync_api import expect, sync_playwright

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(**phone()).new_page()
            page.goto(server.url + "/wx/page/me")  # needs the profile: the consent page first
            page.wait_for_url(f"{wechat}/connect/oauth2/authorize?**")
            page.locator("button[value=allow]").click()
            page.wait_for_url(f"{server.url}/wx/page/me")
            expect(page.locator("#wx-share")).to_have_attribute("data-state", "ready")
            control = urllib.request.Request(wechat + "/_sandbox/control", data=json.dumps({"advance": 7300}).encode(),
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(control, timeout=5).close()
            page.reload()
            expect(page.locator(".nickname")).to_have_text("Alice 小明")  # the page itself is fine
            # The stand-in shows what WeChat's client reports, and share.js keeps it on #wx-share.
            expect(page.locator("#wx-sandbox-error")).to_contain_text("config:invalid signature")
            expect(page.locator("#wx-share")).to_have_attribute("data-error", "config:invalid signature")
            expect(page.locator("#wx-sandbox-share")).to_have_count(0)
            page.screenshot(path=os.path.join(output_dir, "sandbox-share-invalid-signature.png"), full_page=True)
        finally:
            browser.close()
