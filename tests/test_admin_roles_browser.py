"""Named admins in a real Chromium: invite an editor, a viewer who cannot edit, role change and disable at once, scan sign-in."""

from __future__ import annotations

import os
import re

import pytest

from browser import desktop, phone
from conftest import ADMIN_PASSWORD
from procs import admin_site
from server.sandbox.state import ALICE, BOB  # the stand-in's demo followers

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def site(chromium, mongo_uri):
    """One real `python -m server` with WX_ADMIN_PASSWORD and one stand-in WeChat for the module."""
    with admin_site(mongo_uri, ADMIN_PASSWORD) as (server, wechat):
        yield server, wechat
    # No password, invitation token or full openid in the server's log.
    assert ADMIN_PASSWORD not in server.log and "/admin/invite/" + "A" not in server.log
    assert ALICE not in server.log and BOB not in server.log
    assert not re.search(r"/admin/invite/[A-Za-z0-9_-]{20,}", server.log)


@pytest.fixture
def contexts(chromium):
    """new(phone_openid=None): a fresh PC context (or a WeChat phone as that follower); all closed afterwards."""
    made: list = []
    errors: list[str] = []

    def new(follower: str | None = None, wechat=None):
        context = chromium.new_context(**(phone() if follower else desktop()))
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        if follower:
            assert context.request.post(f"{wechat.url}/chat/follower", data={"openid": follower}).ok
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        return page

    yield new
    for context in made:
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def shot(page, output_dir, name: str) -> None:
    page.screenshot(path=os.path.join(output_dir, f"admin-{name}.png"), full_page=True)


def sign_in(page, server, name: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/admin/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")
    expect(page.locator("#nav-me")).to_contain_text(name)


def invite(owner, server, name: str, role: str) -> str:
    from playwright.sync_api import expect

    owner.goto(server.url + "/admin/admins")
    owner.fill("#name", name)
    owner.select_option("#role", role)
    owner.click("#invite-button")
    expect(owner.locator("#invite-url")).to_be_visible()
    return owner.locator("#invite-url").inner_text()


def accept(page, link: str, password: str, output_dir=None) -> None:
    from playwright.sync_api import expect

    page.goto(link)
    if output_dir:
        shot(page, output_dir, "invite")
    page.fill("#new_password", password)
    page.fill("#repeat_password", password)
    page.click("#set-password")
    expect(page.locator("#notice")).to_contain_text("欢迎")


def xsrf_post(page, url: str, form: dict):
    """A POST as the page's own forms send it (its xsrf token), bypassing the hidden controls."""
    token = page.locator('input[name="_xsrf"]').first.get_attribute("value")
    return page.request.post(url, form={"_xsrf": token, **form}, max_redirects=0)


def test_invited_editor_edits_a_viewer_cannot_and_changes_take_effect_at_once(site, contexts, output_dir):
    from playwright.sync_api import expect

    server, _ = site
    owner = contexts()
    sign_in(owner, server, "admin", ADMIN_PASSWORD)
    link = invite(owner, server, "eddie", "editor")
    assert re.fullmatch(rf"{re.escape(server.url)}/admin/invite/[A-Za-z0-9_-]{{43}}", link)
    shot(owner, output_dir, "admins-invited")

    eddie = contexts()
    accept(eddie, link, "eddie's long password", output_dir)
    shot(eddie, output_dir, "me-welcome")
    # The link works once.
    again = contexts()
    again.goto(link)
    expect(again.locator("h1")).to_contain_text("邀请链接已使用")
    # Sign out and back in with the name and the new password, then edit the map.
    eddie.click("#logout")
    sign_in(eddie, server, "eddie", "eddie's long password")
    eddie.goto(server.url + "/admin/states")
    eddie.fill("#key", "score")
    eddie.fill("#page", "/wx/page/bind")
    eddie.fill("#title", "查成绩")
    eddie.click("#save")
    expect(eddie.locator("#notice")).to_contain_text("已保存 “score”")
    expect(eddie.locator("#state-score")).to_contain_text("eddie@127.0.0.1")

    # A viewer sees no edit controls, and a hand-made POST is refused.
    vic = contexts()
    accept(vic, invite(owner, server, "vic", "viewer"), "vic's long password")
    vic.goto(server.url + "/admin/states")
    expect(vic.locator("#state-score")).to_be_visible()
    expect(vic.locator("#read-only")).to_be_visible()
    for hidden in ("#add-form", "#state-score button", "#nav-admins"):
        expect(vic.locator(hidden)).to_have_count(0)
    shot(vic, output_dir, "states-viewer")
    refused = xsrf_post(vic, server.url + "/admin/states/score/delete", {})
    assert refused.status == 403 and "你的角色（只读）" in refused.text()
    vic.goto(server.url + "/admin/states")
    expect(vic.locator("#state-score")).to_be_visible()

    # An owner makes eddie a viewer: his next page has no edit controls; then disables him.
    owner.goto(server.url + "/admin/admins")
    owner.select_option("#role-eddie", "viewer")
    owner.click("#set-role-eddie")
    expect(owner.locator("#admin-eddie .role")).to_have_attribute("data-role", "viewer")
    expect(owner.locator("#admin-eddie .role")).to_have_text("只读")  # the role's name in the page's language
    eddie.reload()
    expect(eddie.locator("#add-form")).to_have_count(0)
    expect(eddie.locator("#my-role")).to_have_text("只读")
    owner.click("#disable-eddie")
    expect(owner.locator("#admin-eddie .status")).to_have_text("已停用")
    shot(owner, output_dir, "admins")
    eddie.reload()
    expect(eddie).to_have_url(re.compile(r"/admin/login"))
    # The last owner rule, seen from the page: admin (WX_ADMIN_PASSWORD) has no controls to lose.
    expect(owner.locator("#disable-admin")).to_have_count(0)


def test_an_admin_binds_their_wechat_then_signs_in_by_scan(site, contexts, output_dir):
    from playwright.sync_api import expect

    server, wechat = site
    pc = contexts()
    sign_in(pc, server, "admin", ADMIN_PASSWORD)
    pc.goto(server.url + "/admin/me")
    expect(pc.locator("#wechat-none")).to_be_visible()
    pc.click("#bind")
    expect(pc.locator("h1")).to_contain_text("绑定微信")
    scan_url = pc.locator("#scan-url").get_attribute("href")
    shot(pc, output_dir, "bind-scan")
    mobile = contexts(ALICE, wechat)
    mobile.goto(scan_url)  # signs the phone in through the stand-in's authorization, then comes back
    expect(mobile.locator("h1")).to_contain_text("绑定微信到管理员 “admin”")
    mobile.click("#scan-confirm")
    expect(mobile.locator("h1")).to_have_text("已确认登录")
    pc.wait_for_url(re.compile(r"/admin/me\?done=bound"))
    expect(pc.locator("#wechat-bound")).to_be_visible()
    shot(pc, output_dir, "me-bound")

    # Signed out, the login page offers 微信扫码登录; the bound phone signs the PC in.
    pc.click("#logout")
    shot(pc, output_dir, "login-named")
    pc.click("#scan-login")
    expect(pc.locator("h1")).to_contain_text("微信扫码登录")
    shot(pc, output_dir, "login-scan")
    mobile.goto(pc.locator("#scan-url").get_attribute("href"))
    expect(mobile.locator("h1")).to_have_text("在电脑上登录管理后台")
    shot(mobile, output_dir, "login-scan-phone")
    mobile.click("#scan-confirm")
    pc.wait_for_url(re.compile(r"/admin/states"))
    expect(pc.locator("#nav-me")).to_contain_text("admin")

    # A follower whose WeChat is bound to no admin is refused on the phone and on the PC.
    other_pc = contexts()
    other_pc.goto(server.url + "/admin/login/scan")
    stranger = contexts(BOB, wechat)
    stranger.goto(other_pc.locator("#scan-url").get_attribute("href"))
    expect(stranger.locator("h1")).to_have_text("这个微信不是管理员")
    shot(stranger, output_dir, "login-scan-refused")
    expect(other_pc.locator("#scan-status")).to_have_attribute("data-status", "denied")
    expect(other_pc.locator("#scan-again")).to_be_visible()
    assert "wx_admin" not in {c["name"] for c in other_pc.context.cookies()}
    pc.goto(server.url + "/admin/audit")
    expect(pc.locator("#audit")).to_contain_text("admin.scan_refused")
    expect(pc.locator("#audit")).to_contain_text("admin.bind")
