"""In Chromium, against `python -m server --sandbox`: follower sync, a notification the phone receives, the funnel."""

from __future__ import annotations

import os

import pytest

from browser import launch, phone, require_chromium
from procs import sandbox_site

GRADES = "tplGradesPublished0000000000000000000000001"


@pytest.fixture
def sandbox_server(tmp_path):
    require_chromium()
    with sandbox_site(tmp_path / "data", WX_NOTIFY_RATE="50") as site:
        yield site


def test_an_admin_syncs_notifies_and_sees_the_funnel(sandbox_server, output_dir):
    from playwright.sync_api import expect, sync_playwright

    import wxconfig

    server, wechat = sandbox_server
    with sync_playwright() as p:
        browser = launch(p)
        try:
            admin = browser.new_page(viewport={"width": 1280, "height": 1000})
            admin.goto(server.url + "/admin/users")
            admin.fill("#password", wxconfig.SANDBOX_ADMIN_PASSWORD)
            admin.click("#login")
            admin.wait_for_url(server.url + "/admin/users")
            admin.click("#sync-start")
            # The bar follows the job by itself: the stand-in's three followers, then Done (a page
            # made without a locale is en-US, so English), and the counts follow it without a reload.
            expect(admin.locator("#sync-status")).to_contain_text("Done", timeout=15_000)
            expect(admin.locator("#sync-status")).to_contain_text("3 / 3")
            # Rendered after the run ended, or made again when it ends: the list shows the followers it wrote.
            expect(admin.locator("#users tbody tr")).to_have_count(3)
            expect(admin.locator("#counts")).to_contain_text("3")
            expect(admin.locator("#count-subscribed")).to_have_text("3")
            expect(admin.locator("#counts")).to_contain_text("following")
            admin.screenshot(path=os.path.join(output_dir, "admin-follower-sync.png"), full_page=True)

            admin.goto(server.url + "/admin/notify")
            admin.select_option("#template", GRADES)  # picking a template shows its fields
            admin.wait_for_selector("#v_thing1")
            admin.fill("#v_thing1", "你的成绩已发布")
            admin.fill("#v_thing2", "高等数学")
            admin.fill("#v_time3", "2026年1月20日 10:00")
            admin.select_option("#entry", "score")
            admin.check("input[name=target][value=all]")
            admin.click("#notify-preview-button")
            expect(admin.locator("#notify-preview")).to_contain_text("课程：高等数学")
            admin.click("#notify-send")
            expect(admin.locator("#jobs .job-status").first).to_contain_text("Done: 3 sent", timeout=15_000)
            admin.screenshot(path=os.path.join(output_dir, "admin-notify.png"), full_page=True)

            # The follower's phone shows the card; its link signs them in on the entry's page.
            phone_page = browser.new_page(**phone())
            phone_page.goto(wechat + "/")
            card = phone_page.locator(".template", has_text="成绩发布通知")
            expect(card).to_contain_text("课程：高等数学")
            expect(card.locator("a.more")).to_have_attribute("href", f"{server.url}/wx/go/score")
            phone_page.screenshot(path=os.path.join(output_dir, "sandbox-template-card.png"))
            card.locator("a.more").click()
            phone_page.wait_for_url(f"{server.url}/wx/page/bind?next=*")

            # The funnel counted that tap, its sign-in and its landing (counters reach MongoDB within 5 s).
            for _ in range(30):
                admin.goto(server.url + "/admin/states/score")
                if admin.locator("#funnel-landed td.num").text_content() == "1":
                    break
                admin.wait_for_timeout(500)  # the 5 s flush is the server's, not an event the page can await
            expect(admin.locator("#funnel-tap td.num")).to_have_text("1")
            expect(admin.locator("#funnel-authorized td.num")).to_have_text("1")
            expect(admin.locator("#funnel-landed td.num")).to_have_text("1")
            admin.screenshot(path=os.path.join(output_dir, "admin-funnel.png"), full_page=True)
        finally:
            browser.close()


def test_a_slow_sync_ends_on_a_page_that_shows_what_it_wrote(sandbox_server):
    """WeChat answering slowly: the page is made while the sync runs, follows it, and is made
    again when it ends (its list is the server's, not the script's)."""
    import json
    import urllib.request

    from playwright.sync_api import expect, sync_playwright

    import wxconfig

    server, wechat = sandbox_server
    slow = urllib.request.Request(wechat + "/_sandbox/control", data=json.dumps({"latency": 1.0}).encode(),
                                  headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(slow, timeout=10).close()
    with sync_playwright() as p:
        browser = launch(p)
        try:
            admin = browser.new_page(locale="zh-CN")
            admin.goto(server.url + "/admin/users")
            admin.fill("#password", wxconfig.SANDBOX_ADMIN_PASSWORD)
            admin.click("#login")
            admin.wait_for_url(server.url + "/admin/users")
            admin.click("#sync-start")
            expect(admin.locator("#sync-status")).to_contain_text("同步中", timeout=10_000)
            assert admin.locator("#users tbody tr").count() == 1  # "no users yet", made before the writes
            admin.wait_for_url(server.url + "/admin/users#sync", timeout=20_000)
            expect(admin.locator("#sync-status")).to_contain_text("已完成")
            expect(admin.locator("#users tbody tr")).to_have_count(3)
            expect(admin.locator("#count-total")).to_have_text("3")
        finally:
            browser.close()
