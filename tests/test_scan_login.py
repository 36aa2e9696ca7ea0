"""Scan login over real HTTP, where a browser is not needed: expiry, binding, bounds and bad input."""

from __future__ import annotations

import re

import pytest

import server.scanlogin as scanlogin
from conftest import DESKTOP_UA, Browser


async def seed(services):
    await services.store.set_state("score", {"page": "/wx/page/bind", "title": "查成绩", "keywords": ["成绩"],
                                             "scope": "snsapi_base"}, by="test")
    await services.state_map.refresh()


async def pc_start(app_url) -> tuple[Browser, str]:
    pc = Browser(DESKTOP_UA)
    page = await pc.get(f"{app_url}/wx/go/score")
    assert page.status == 200 and "<title>用微信扫码继续</title>" in page.text_body
    token = re.search(r'data-token="([0-9a-f]{32})"', page.text_body).group(1)
    return pc, token


@pytest.mark.gen_test(timeout=20)
async def test_a_code_never_confirmed_expires_for_the_pc_and_the_phone(app_url, services, sandbox, browser, monkeypatch):
    monkeypatch.setattr(scanlogin, "SCAN_SECONDS", 1)
    await seed(services)
    pc, token = await pc_start(app_url)
    try:
        # The long poll ends at the code's deadline with "expired", not after its usual 25 s.
        wait = await pc.get(f"{app_url}/wx/scan/{token}/wait?since=pending")
        assert wait.status == 200 and (await wait.json()) == {"status": "expired"}
        phone = await browser.get(f"{app_url}/wx/scan/{token}")
        assert phone.status in (404, 410) and "二维码已" in phone.text_body
        assert (await pc.get(f"{app_url}/wx/scan/{token}/finish")).status == 403
    finally:
        await pc.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/wx/scan/{t}/wait?since=nonsense", "/wx/scan/{t}/wait?since=%00",
                                  "/wx/scan/zzzz", "/wx/scan/{t}x"])
async def test_bad_scan_requests_get_a_4xx(app_url, services, path):
    await seed(services)
    pc, token = await pc_start(app_url)
    try:
        response = await pc.get(app_url + path.format(t=token))
        assert 400 <= response.status < 500
    finally:
        await pc.close()


@pytest.mark.gen_test
async def test_a_phone_post_without_xsrf_changes_nothing(app_url, services, sandbox, browser):
    await seed(services)
    pc, token = await pc_start(app_url)
    try:
        await browser.get(f"{app_url}/wx/scan/{token}")  # scanned by the phone
        refused = await browser.post(f"{app_url}/wx/scan/{token}", data={"action": "confirm"})
        assert refused.status == 403
        assert (await services.store.get_scan(token))["status"] == "scanned"
    finally:
        await pc.close()


@pytest.mark.gen_test
async def test_long_polls_are_bounded_per_process(app_url, services, monkeypatch):
    monkeypatch.setattr(scanlogin, "MAX_WAITERS", 0)
    await seed(services)
    pc, token = await pc_start(app_url)
    try:
        response = await pc.get(f"{app_url}/wx/scan/{token}/wait?since=pending")
        assert response.status == 503 and response.headers["Retry-After"] == "5"
    finally:
        await pc.close()


def test_the_computer_is_named_in_the_readers_language():
    from server import i18n
    from server.wechat.browser import describe, described_text

    zh, en = i18n.locale("zh_CN"), i18n.locale("en_US")
    chrome = describe(DESKTOP_UA)
    assert chrome == "Chrome on Windows"  # stored with the code, and in logs, as English
    assert i18n.say(described_text(chrome), zh) == "Windows 上的 Chrome"
    assert i18n.say(described_text(chrome), en) == "Chrome on Windows"
    unknown = describe("curl/8.5")
    assert i18n.say(described_text(unknown), zh) == "未知系统 上的 浏览器"
    assert i18n.say(described_text(unknown), en) == "a browser on an unknown system"
    assert described_text(None) == ""
