"""Website-app login (snsapi_login, WX_WEB_APPID) in Chromium: a PC context and a phone context."""

from __future__ import annotations

import re

import pytest

from browser import desktop, phone, require_chromium
from procs import ServerProcess, clean_env
from server.embedded import free_port
from server.sandbox.state import ALICE  # the stand-in's demo followers

WEB_APPID = "wxwebapp0000000001"
WEB_SECRET = "websecret0000000000000000000001"
LONER = "oSandboxLoner000000000000000"  # a follower whose accounts are not bound: no unionid


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory):
    require_chromium()
    port, wechat_port = free_port(), free_port()
    data = tmp_path_factory.mktemp("web-login")
    server = ServerProcess(clean_env(WX_DATA_DIR=str(data), WX_WEB_APPID=WEB_APPID, WX_WEB_APPSECRET=WEB_SECRET),
                           ["--sandbox", "--sandbox-port", str(wechat_port)], port=port).start()
    yield server, f"http://127.0.0.1:{wechat_port}"
    assert server.stop() == 0


def store(server):
    from pymongo import MongoClient

    for line in server.lines:
        match = re.search(r"embedded MongoDB-compatible server on 127\.0\.0\.1:(\d+)", line)
        if match:
            return MongoClient(f"mongodb://127.0.0.1:{match.group(1)}/?directConnection=true")
    raise AssertionError("no store URI in the log")


def phone_as(chromium, wechat: str, openid: str):
    context = chromium.new_context(**phone())
    assert context.request.post(f"{wechat}/chat/follower", data={"openid": openid}).ok
    return context.new_page()


def sign_in_on_pc(chromium, server, wechat: str, mobile) -> None:
    from playwright.sync_api import expect

    pc = chromium.new_context(**desktop()).new_page()
    pc.goto(server.url + "/wx/go/score")
    # Not our scan page: WeChat's own QR sign-in page for the website app.
    assert pc.url.startswith(f"{wechat}/connect/qrconnect?appid={WEB_APPID}&redirect_uri=")
    assert "scope=snsapi_login" in pc.url
    confirm_url = pc.locator("#qrconnect-url").get_attribute("href")
    mobile.goto(confirm_url)
    mobile.click("#qrconnect-allow")
    expect(mobile.locator("#qrconnect-done")).to_contain_text("已允许")
    pc.wait_for_url(server.url + "/wx/page/bind*", timeout=10_000)
    expect(pc.locator("h1")).to_contain_text("绑定")


def test_website_login_links_to_the_follower_by_unionid(sandbox_server, chromium):
    server, wechat = sandbox_server
    mobile = phone_as(chromium, wechat, ALICE)
    # Alice signs in on her phone first (profile scope: the account learns her unionid).
    mobile.goto(server.url + "/wx/go/me")
    mobile.locator("button[value=allow]").click()
    mobile.wait_for_url(server.url + "/wx/page/me*")
    sign_in_on_pc(chromium, server, wechat, mobile)
    client = store(server)
    try:
        users = list(client.wxauth.users.find({"unionid": "uSandboxAlice000000000000000"}))
    finally:
        client.close()
    # One person, one record: the official-account openid stays, the website's is added.
    assert len(users) == 1
    assert users[0]["openid"] == ALICE and users[0]["web_openid"] == "oWebAlice000000000000000"


def test_website_login_without_unionid_keeps_a_record_of_its_own(sandbox_server, chromium):
    server, wechat = sandbox_server
    admin = chromium.new_context()
    assert admin.request.post(f"{wechat}/_sandbox/followers", data={"openid": LONER, "nickname": "独行"}).ok
    mobile = phone_as(chromium, wechat, LONER)
    sign_in_on_pc(chromium, server, wechat, mobile)
    client = store(server)
    try:
        web = client.wxauth.users.find_one({"web_openid": "oWebLoner000000000000000"})
        follower = client.wxauth.users.find_one({"openid": LONER})
    finally:
        client.close()
    assert web["openid"] == "oWebLoner000000000000000" and web["source"] == "website"
    assert "unionid" not in web and follower is None
