"""Scan to sign in, end to end in Chromium: a PC context outside WeChat and phone contexts inside it."""

from __future__ import annotations

import os
import re
import time
import urllib.request

import pytest

from browser import decode_qr, desktop, phone, require_chromium
from procs import ServerProcess, clean_env
from server.embedded import free_port
from server.sandbox.state import ALICE, BOB  # the stand-in's demo followers


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory):
    require_chromium()
    port, wechat_port = free_port(), free_port()
    data = tmp_path_factory.mktemp("scan-data")
    server = ServerProcess(clean_env(WX_DATA_DIR=str(data)), ["--sandbox", "--sandbox-port", str(wechat_port)],
                           port=port).start()
    yield server, f"http://127.0.0.1:{wechat_port}"
    assert server.stop() == 0


def as_follower(context, wechat: str, openid: str) -> None:
    """Picks the stand-in's follower for this phone (its chat page does the same)."""
    response = context.request.post(f"{wechat}/chat/follower", data={"openid": openid})
    assert response.ok


def pc_page(chromium, server, path: str = "/wx/go/score"):
    from playwright.sync_api import expect

    page = chromium.new_context(**desktop()).new_page()
    page.goto(server.url + path)
    expect(page).to_have_title("用微信扫码继续")
    scan_url = page.locator("#scan-url").get_attribute("href")
    assert page.locator("#scan-url").inner_text() == scan_url
    assert scan_url.startswith(server.url + "/wx/scan/")
    return page, scan_url


def phone_page(chromium, wechat: str, openid: str = ALICE):
    context = chromium.new_context(**phone())
    as_follower(context, wechat, openid)
    return context.new_page()


def test_pc_signs_in_after_the_phone_confirms(sandbox_server, chromium, output_dir):
    from playwright.sync_api import expect

    server, wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    pc.screenshot(path=os.path.join(output_dir, "scan-pc.png"))
    mobile = phone_page(chromium, wechat)
    mobile.goto(scan_url)  # the phone signs in through WeChat's authorization, then comes back
    expect(mobile.locator("h1")).to_contain_text("在电脑上登录 “查成绩")
    expect(mobile.locator("#scan-agent")).to_have_text("Windows 上的 Chrome")
    expect(mobile.locator("#scan-ip")).to_have_text("127.0.0.1")
    expect(pc.locator("#scan-status")).to_have_attribute("data-status", "scanned")
    mobile.screenshot(path=os.path.join(output_dir, "scan-phone-confirm.png"))
    started = time.monotonic()
    mobile.click("#scan-confirm")
    expect(mobile.locator("h1")).to_have_text("已确认登录")
    pc.wait_for_url(server.url + "/wx/page/bind*", timeout=10_000)
    print(f"PC moved on {1000 * (time.monotonic() - started):.0f} ms after the tap")
    expect(pc.locator("h1")).to_contain_text("绑定")
    # The PC has the phone's session: the bind page knows the follower.
    session = [c for c in pc.context.cookies() if c["name"] == "wx_session"]
    assert session and session[0]["httpOnly"]

    # The code is single use: confirming again is refused, and nothing changes on the PC.
    mobile.go_back()
    mobile.reload()
    expect(mobile.locator("h1")).to_have_text("二维码已使用")
    metrics = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
    for step in ("started", "scanned", "confirmed", "finished"):
        assert f'wxauth_scan_login_steps_total{{step="{step}"}}' in metrics


def test_the_scan_pages_speak_the_readers_language(sandbox_server, chromium):
    """Chinese by default (phone() and desktop() are zh-CN); the #languages picker switches the phone to
    English and ?lang=en_US the PC, whose live status words come from its page (static/js/scan.js holds none)."""
    from playwright.sync_api import expect

    server, wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    expect(pc.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(pc.locator("#scan-status")).to_have_text("等待扫码")
    mobile = phone_page(chromium, wechat)
    mobile.goto(scan_url)
    expect(mobile.locator("#scan-confirm")).to_have_text("确认登录")
    expect(pc.locator("#scan-status")).to_have_text("已扫码，请在手机上确认")
    mobile.click("#languages a[data-lang=en_US]")
    expect(mobile.locator("html")).to_have_attribute("lang", "en-US")
    expect(mobile.locator("h1")).to_have_text(re.compile(r"^Sign in to “.+” on the computer$"))
    expect(mobile.locator("#scan-confirm")).to_have_text("Confirm sign-in")
    expect(mobile.locator("#scan-agent")).to_have_text("Chrome on Windows")
    expect(mobile.locator("#languages a[aria-current]")).to_have_text("English")
    mobile.click("#scan-cancel")
    expect(mobile.locator("h1")).to_have_text("Cancelled")  # remembered (wx_lang): the form's answer is English too
    expect(pc.locator("#scan-status")).to_have_text("已在手机上取消")  # the PC still reads Chinese

    pc.goto(server.url + "/wx/go/score?lang=en_US")
    expect(pc).to_have_title("Scan with WeChat to continue")
    expect(pc.locator("#scan-status")).to_have_text("Waiting for a scan")
    mobile.goto(pc.locator("#scan-url").get_attribute("href"))
    expect(mobile.locator("#scan-cancel")).to_have_text("Cancel")
    expect(pc.locator("#scan-status")).to_have_text("Scanned: confirm on your phone")
    mobile.click("#scan-cancel")
    expect(pc.locator("#scan-status")).to_have_text("Cancelled on the phone")
    expect(pc.locator("#scan-again a")).to_have_text("Get a fresh code")


def test_cancel_shows_on_the_pc_with_a_fresh_code(sandbox_server, chromium):
    from playwright.sync_api import expect

    server, wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    mobile = phone_page(chromium, wechat)
    mobile.goto(scan_url)
    mobile.click("#scan-cancel")
    expect(mobile.locator("h1")).to_have_text("已取消")
    expect(pc.locator("#scan-status")).to_have_attribute("data-status", "cancelled")
    expect(pc.locator("#scan-again")).to_be_visible()
    pc.click("#scan-again a")
    expect(pc).to_have_title("用微信扫码继续")
    assert pc.locator("#scan-url").get_attribute("href") != scan_url
    assert "wx_session" not in {c["name"] for c in pc.context.cookies()}


def test_a_second_phone_cannot_take_over_a_scanned_code(sandbox_server, chromium):
    from playwright.sync_api import expect

    server, wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    first = phone_page(chromium, wechat, ALICE)
    first.goto(scan_url)
    expect(first.locator("#scan-confirm")).to_be_visible()
    second = phone_page(chromium, wechat, BOB)
    second.goto(scan_url)
    expect(second.locator("h1")).to_have_text("二维码已被其他微信扫描")
    # The first phone still decides, and the PC signs in as that follower.
    first.click("#scan-confirm")
    pc.wait_for_url(server.url + "/wx/page/bind*", timeout=10_000)


def test_the_scan_url_on_another_computer_signs_nothing_in(sandbox_server, chromium):
    from playwright.sync_api import expect

    server, wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    token = scan_url.rsplit("/", 1)[1]
    other_pc = chromium.new_context(**desktop()).new_page()
    # Opened on a computer, the scan URL only says to use WeChat.
    other_pc.goto(scan_url)
    expect(other_pc.locator("h1")).to_have_text("请用微信扫一扫")
    mobile = phone_page(chromium, wechat)
    mobile.goto(scan_url)
    mobile.click("#scan-confirm")
    # Another browser learns nothing from the long poll and cannot finish the sign-in.
    assert other_pc.request.get(f"{server.url}/wx/scan/{token}/wait?since=pending").status == 403
    other_pc.goto(f"{server.url}/wx/scan/{token}/finish")
    expect(other_pc.locator("h1")).to_have_text("无法完成登录")
    assert "wx_session" not in {c["name"] for c in other_pc.context.cookies()}
    pc.wait_for_url(server.url + "/wx/page/bind*", timeout=10_000)


def test_the_qr_code_decodes_to_the_scan_url(sandbox_server, chromium, tmp_path):
    server, _wechat = sandbox_server
    pc, scan_url = pc_page(chromium, server)
    png = pc.request.get(scan_url + "/qr.png")
    assert png.status == 200 and png.headers["content-type"] == "image/png"
    assert decode_qr(png.body(), tmp_path) == scan_url
    # The inline SVG preview carries the same code.
    assert decode_qr(pc.locator(".qr svg").screenshot(), tmp_path) == scan_url
    # Another browser cannot fetch this PC's code.
    other = chromium.new_context(**desktop()).new_page()
    assert other.request.get(scan_url + "/qr.png").status == 404
