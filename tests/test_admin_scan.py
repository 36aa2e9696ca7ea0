"""Admin sign-in by WeChat scan over real HTTP (a PC client and a phone client), and the `admins` commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yarl
from tornado.web import create_signed_value

from conftest import ADMIN_PASSWORD, COOKIE_SECRET, DESKTOP_UA, ROOT, AdminClient, Browser
from procs import clean_env
from server.admin_auth import ADMIN_COOKIE
from server.logtags import short_openid

ALICE = "oAdminAlice0000000000000000"
MALLORY = "oMallory00000000000000000000"


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
def make(io_loop, http_server, app_url, admin_auth):
    """make(): a PC client outside WeChat; make(openid): a phone in WeChat, signed in as that follower."""
    made: list[Browser] = []

    async def client(openid: str | None = None) -> Browser:
        if openid is None:
            browser = Browser(DESKTOP_UA)
        else:
            browser = Browser()  # WeChat's User-Agent
            cookie = create_signed_value(COOKIE_SECRET, "wx_session", json.dumps({"openid": openid, "scope": "snsapi_base"}))
            browser.session.cookie_jar.update_cookies({"wx_session": cookie.decode()}, response_url=yarl.URL(app_url))
        made.append(browser)
        return browser

    yield client
    for browser in made:
        io_loop.run_sync(browser.close)


async def pc_code(pc: Browser, app_url: str, path: str = "/admin/login/scan?next=/admin/users") -> tuple[str, str]:
    page = await pc.get(app_url + path)
    assert page.status == 200, page.status
    token = re.search(r'data-token="([0-9a-f]{32})"', page.text_body).group(1)
    finish = re.search(r'data-finish="([^"]+)"', page.text_body).group(1)
    return token, finish


async def confirm_on(phone: Browser, app_url: str, token: str):
    page = await phone.get(f"{app_url}/wx/scan/{token}")
    if page.status != 200:
        return page
    xsrf = AdminClient.XSRF_RE.search(page.text_body).group(1)
    return await phone.post(f"{app_url}/wx/scan/{token}", data={"_xsrf": xsrf, "action": "confirm"})


@pytest.mark.gen_test(timeout=30)
async def test_an_admin_signs_in_by_scan_with_a_bound_wechat(services, admin_auth, make, app_url):
    pc = await make()
    await services.admins.bind("admin", ALICE, by="test")
    token, finish = await pc_code(pc, app_url)
    assert finish == f"/admin/login/scan/{token}/finish"
    page = await confirm_on(await make(ALICE), app_url, token)
    assert page.status == 200 and "已确认登录" in page.text_body
    done = await pc.get(app_url + finish, follow=False)
    assert done.status == 302 and done.headers["Location"] == "/admin/users"
    assert (await pc.get(app_url + "/admin/users", follow=False)).status == 200
    # A follower's finish never signs anyone in with an admin's code, and the code is used.
    assert (await pc.get(f"{app_url}/wx/scan/{token}/finish", follow=False)).status == 403
    assert (await pc.get(app_url + finish, follow=False)).status == 403


@pytest.mark.gen_test(timeout=30)
async def test_a_wechat_bound_to_no_admin_is_refused_on_both_sides_and_audited(services, admin_auth, make, app_url):
    pc = await make()
    await services.admins.bind("admin", ALICE, by="test")
    token, finish = await pc_code(pc, app_url)
    page = await (await make(MALLORY)).get(f"{app_url}/wx/scan/{token}")
    assert page.status == 403 and "这个微信不是管理员" in page.text_body
    wait = await pc.get(f"{app_url}/wx/scan/{token}/wait?since=pending")
    assert json.loads(wait.text_body) == {"status": "denied"}
    assert (await pc.get(app_url + finish, follow=False)).status == 403
    assert ADMIN_COOKIE not in {m.key for m in pc.session.cookie_jar}
    refusals = [d for d in await services.store.recent_audit(10) if d["action"] == "admin.scan_refused"]
    assert len(refusals) == 1 and refusals[0]["target"] == short_openid(MALLORY)
    assert MALLORY not in repr(refusals)


@pytest.mark.gen_test(timeout=30)
async def test_a_disabled_admin_cannot_sign_in_by_scan(services, admin_auth, make, app_url):
    pc = await make()
    token = await services.admins.invite("bob", "editor", by="test")
    await services.admins.use_invitation(token)
    await admin_auth.set_password("bob", "bob's long password", by="test")
    await services.admins.bind("bob", ALICE, by="test")
    code, finish = await pc_code(pc, app_url)
    page = await confirm_on(await make(ALICE), app_url, code)
    assert page.status == 200 and "已确认登录" in page.text_body
    await services.admins.disable("bob", by="test")  # between the tap and the PC's finish
    done = await pc.get(app_url + finish, follow=False)
    assert done.status == 403 and ADMIN_COOKIE not in {m.key for m in pc.session.cookie_jar}


@pytest.mark.gen_test(timeout=30)
async def test_binding_needs_the_signed_in_admin_the_phone_and_the_same_browser(services, admin_auth, make, app_url):
    pc = await make()
    admin = AdminClient(pc, app_url)
    assert (await admin.login()).status == 303
    token, finish = await pc_code(pc, app_url, "/admin/me/bind")
    assert finish == f"/admin/me/bind/{token}/finish"
    mobile = await make(ALICE)
    page = await mobile.get(f"{app_url}/wx/scan/{token}")
    assert "绑定微信到管理员 “admin”" in page.text_body
    # Not confirmed yet: nothing is bound, and the code stays usable.
    assert (await pc.get(app_url + finish, follow=False)).status == 403
    # Another browser, even signed in as the same admin, cannot finish this PC's binding.
    other = AdminClient(await make(), app_url)
    assert (await other.login()).status == 303
    assert (await confirm_on(mobile, app_url, token)).status == 200
    assert (await other.get(finish)).status == 403
    done = await pc.get(app_url + finish, follow=False)
    assert done.status == 303 and done.headers["Location"] == "/admin/me?done=bound"
    assert (await services.admins.by_openid(ALICE))["_id"] == "admin"
    me = await admin.get("/admin/me")
    assert short_openid(ALICE) in me.text_body and ALICE not in me.text_body
    # Another admin cannot take the same WeChat.
    invite = await services.admins.invite("bob", "editor", by="test")
    await services.admins.use_invitation(invite)
    await admin_auth.set_password("bob", "bob's long password", by="test")
    with pytest.raises(Exception, match="another admin"):
        await services.admins.bind("bob", ALICE, by="test")


# ---- the commands --------------------------------------------------------------------------------

def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_admins_commands(tmp_path, db_name, mongo_uri):
    from pymongo import MongoClient

    env = clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, WX_DATA_DIR=str(tmp_path),
                    WX_APP_HOST="https://wx.example.com", LANG="en_US.UTF-8")  # English output
    added = cli(env, "admins", "add", "bob", "--role", "editor")
    assert added.returncode == 0, added.stderr
    link = added.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"https://wx\.example\.com/admin/invite/[A-Za-z0-9_-]{43}", link)
    assert "24 hours" in added.stdout
    token = link.rsplit("/", 1)[1]
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as client:
        assert token not in repr(list(client[db_name].admin_invites.find()))

    assert cli(env, "admins", "list").stdout.splitlines() == ["bob\teditor\tinvited\t-\t"]
    bad = cli(env, "admins", "add", "Bob!", "--role", "editor")
    assert bad.returncode == 2 and "a-z 0-9" in bad.stderr
    assert cli(env, "admins", "add", "x", "--role", "root").returncode == 2
    assert cli(env, "admins", "add", "admin", "--role", "owner").returncode == 2
    assert cli(env, "admins", "role", "bob", "viewer").returncode == 0
    missing = cli(env, "admins", "role", "nobody", "viewer")
    assert missing.returncode == 2 and "no admin named" in missing.stderr

    # The last active owner stays one (made active here as the invitation page would).
    assert cli(env, "admins", "add", "carol", "--role", "owner").returncode == 0
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as client:
        client[db_name].admins.update_one({"_id": "carol"}, {"$set": {"status": "active"}})
    last = cli(env, "admins", "disable", "carol")
    assert last.returncode == 2 and "last active owner" in last.stderr
    assert cli(env, "admins", "role", "carol", "editor").returncode == 2
    assert cli(env, "admins", "disable", "bob").returncode == 0
    assert "bob\tviewer\tdisabled" in cli(env, "admins", "list").stdout
    # A disabled admin comes back with a new link (the role stays); so does the last owner who lost a password.
    again = cli(env, "admins", "reinvite", "bob")
    assert again.returncode == 0, again.stderr
    new_link = again.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"https://wx\.example\.com/admin/invite/[A-Za-z0-9_-]{43}", new_link) and new_link != link
    assert "bob\tviewer\tinvited" in cli(env, "admins", "list").stdout
    assert cli(env, "admins", "reinvite", "carol").returncode == 0
    assert "carol\towner\tinvited" in cli(env, "admins", "list").stdout
    for name in ("nobody", "admin"):
        refused = cli(env, "admins", "reinvite", name)
        assert refused.returncode == 2 and refused.stdout == "", name
    audit = cli(env, "audit").stdout
    for action in ("admin.invite", "admin.role", "admin.disable", "admin.reinvite"):
        assert f"cli\t{action}\tbob" in audit, action
