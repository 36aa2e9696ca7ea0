"""Named admins over real HTTP: roles on every route, invitations, the last owner, audit names, immediate effect."""

from __future__ import annotations

import re

import pytest
import tornado.web
import yarl

from conftest import ADMIN_PASSWORD, AdminClient, Browser
from server.admin_auth import ADMIN_COOKIE
from server.admins import INVITE_SECONDS, AdminError, invite_digest

PASSWORDS = {"alice": "alice's long password", "bob": "bob's long password", "vera": "vera's long password"}


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
def clients(io_loop, http_server, app_url, admin_auth):
    """AdminClient(name) signed in as that named admin (each with its own cookie jar); closed afterwards."""
    made: list[Browser] = []

    async def client(name: str | None = None) -> AdminClient:
        browser = Browser()
        made.append(browser)
        c = AdminClient(browser, app_url)
        if name is not None:
            response = await c.login(PASSWORDS.get(name, ADMIN_PASSWORD), username=name)
            assert response.status == 303, (name, response.status)
        return c

    yield client
    for browser in made:
        io_loop.run_sync(browser.close)


async def add_admin(services, admin_auth, name: str, role: str) -> None:
    """An active admin, made the way an invitation is accepted."""
    token = await services.admins.invite(name, role, by="test")
    await services.admins.use_invitation(token)
    await admin_auth.set_password(name, PASSWORDS[name], by="test")


def copy_of(client: AdminClient, app_url: str) -> Browser:
    thief = Browser()
    thief.session.cookie_jar.update_cookies({ADMIN_COOKIE: client.browser.cookie(ADMIN_COOKIE)},
                                            response_url=yarl.URL(app_url))
    return thief


# ---- every POST route, from the route table -------------------------------------------------------

# A sample value for each pattern the admin routes use; a route with a new pattern fails below
# until it gets a sample here, so no route escapes the role check unnoticed.
SAMPLES = ["demo", "notify:0123456789ab", "bob", "0123456789abcdef0123456789abcdef",
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
# Handlers a viewer may POST to: their own sign-in, sign-out, password and WeChat, and an invitation.
SELF_SERVICE = {"LoginHandler", "LogoutHandler", "PasswordHandler", "InviteHandler", "UnbindHandler"}


def sample_path(pattern: str) -> str:
    groups = re.findall(r"\((?:[^()]|\([^()]*\))*\)", pattern)
    path = pattern
    for group in groups:
        sample = next((s for s in SAMPLES if re.fullmatch(group, s)), None)
        assert sample is not None, f"add a sample for {group} ({pattern}) to SAMPLES"
        path = path.replace(group, sample, 1)
    path = path.replace("\\.", ".").replace("/?", "")
    assert re.fullmatch(pattern, path), (pattern, path)
    return path


def admin_post_routes() -> list[tuple[str, type]]:
    from handlers import default_handlers
    from handlers.admin.base import AdminHandler

    return [(pattern, cls) for pattern, cls in default_handlers()
            if issubclass(cls, AdminHandler) and cls.post is not tornado.web.RequestHandler.post]


def test_the_self_service_routes_are_exactly_the_ones_without_an_edit_role():
    open_to_all = {cls.__name__ for _, cls in admin_post_routes() if cls.edit_role is None}
    assert open_to_all == SELF_SERVICE
    assert len(admin_post_routes()) >= 15


async def snapshot(store) -> dict:
    names = ("states", "settings", "admins", "admin_invites", "jobs", "audit", "scan_logins")
    return {name: await store.db[name].find({}).sort("_id", 1).to_list() for name in names}


@pytest.mark.gen_test(timeout=60)
async def test_a_viewer_gets_403_on_every_admin_post_and_nothing_changes(services, admin_auth, clients):
    await add_admin(services, admin_auth, "vera", "viewer")
    await services.state_entries.add({"key": "demo", "page": "/wx/page/me", "title": "Me", "keywords": "me",
                                      "scope": "snsapi_base"}, by="test")
    await add_admin(services, admin_auth, "bob", "editor")
    viewer = await clients("vera")
    before = await snapshot(services.store)
    routes = [(p, c) for p, c in admin_post_routes() if c.edit_role is not None]
    for pattern, cls in routes:
        path = sample_path(pattern)
        response = await viewer.post(path, {"key": "x", "page": "/wx/page/me", "role": "owner", "name": "mallory",
                                            "welcome": "hi", "action": "save", "source": "json",
                                            "menu_json": '{"button": []}'})
        assert response.status == 403, (path, response.status)
        assert "你的角色（只读）只能查看" in response.text_body and "什么都没有改" in response.text_body, path
    assert await snapshot(services.store) == before


@pytest.mark.gen_test(timeout=60)
async def test_an_editor_cannot_manage_admins(services, admin_auth, clients):
    await add_admin(services, admin_auth, "bob", "editor")
    editor = await clients("bob")
    assert (await editor.get("/admin/admins")).status == 403
    for pattern, cls in admin_post_routes():
        if cls.edit_role == "owner":
            assert (await editor.post(sample_path(pattern), {"name": "mallory", "role": "owner"})).status == 403
    assert await services.store.get_admin("mallory") is None
    assert (await services.store.get_admin("bob"))["role"] == "editor"


@pytest.mark.gen_test
async def test_a_viewer_sees_no_edit_controls_and_an_editor_does(services, admin_auth, clients):
    await services.state_entries.add({"key": "demo", "page": "/wx/page/me", "title": "Me", "keywords": "me",
                                      "scope": "snsapi_base"}, by="test")
    await add_admin(services, admin_auth, "vera", "viewer")
    await add_admin(services, admin_auth, "bob", "editor")
    viewer, editor = await clients("vera"), await clients("bob")
    for path in ["/admin/states", "/admin/states/demo", "/admin/replies", "/admin/users", "/admin/menu",
                 "/admin/notify", "/admin/audit"]:
        page = await viewer.get(path)
        assert page.status == 200, path
        actions = set(re.findall(r'<form method="post" action="([^"]*)"', page.text_body))
        assert actions == {"/admin/logout"}, (path, actions)
        assert "disabled" in page.text_body or "<fieldset" not in page.text_body
        assert 'id="nav-admins"' not in page.text_body
    assert 'id="add-form"' in (await editor.get("/admin/states")).text_body
    assert 'id="sync-start"' in (await editor.get("/admin/users")).text_body


# ---- the last owner -----------------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{}])
async def test_the_last_owner_cannot_be_demoted_or_disabled(services, admin_auth, clients, env_overrides):
    await add_admin(services, admin_auth, "alice", "owner")
    owner = await clients("alice")
    response = await owner.post("/admin/admins/alice/role", {"role": "editor"})
    assert response.status == 409 and "最后一个有效的所有者，不能降级" in response.text_body
    response = await owner.post("/admin/admins/alice/disable")
    assert response.status == 409 and "最后一个有效的所有者，不能停用" in response.text_body
    assert (await services.store.get_admin("alice"))["role"] == "owner"
    with pytest.raises(AdminError, match="last active owner"):
        await services.admins.disable("alice", by="cli")
    # With a second owner the first may step down.
    await add_admin(services, admin_auth, "bob", "owner")
    assert (await owner.post("/admin/admins/alice/role", {"role": "editor"})).status == 303
    assert (await services.store.get_admin("alice"))["role"] == "editor"
    assert (await owner.get("/admin/admins")).status == 403  # at once: she is an editor now


@pytest.mark.gen_test
async def test_the_bootstrap_owner_counts_and_cannot_be_changed(services, admin_auth, clients):
    await add_admin(services, admin_auth, "alice", "owner")
    with pytest.raises(AdminError, match="bootstrap"):
        await services.admins.set_role("admin", "viewer", by="cli")
    with pytest.raises(AdminError, match="bootstrap"):
        await services.admins.invite("admin", "viewer", by="cli")
    await services.admins.set_role("alice", "viewer", by="cli")  # admin (WX_ADMIN_PASSWORD) is still an owner


# ---- invitations ----------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_an_invitation_sets_a_password_once_and_signs_in(services, admin_auth, clients, app_url):
    owner = await clients("admin")
    response = await owner.post("/admin/admins", {"name": "bob", "role": "editor"})
    assert response.status == 200
    link = re.search(r'<code id="invite-url">([^<]+)</code>', response.text_body).group(1)
    assert link.startswith(f"{app_url}/admin/invite/")
    token = link.rsplit("/", 1)[1]
    stored = await services.store.admin_invites.find({}).to_list()
    assert [d["_id"] for d in stored] == [invite_digest(token)] and token not in repr(stored)
    assert "invite-url" not in (await owner.get("/admin/admins")).text_body  # shown once

    bob = await clients()
    page = await bob.browser.get(link)
    assert page.status == 200 and "bob" in page.text_body
    xsrf = AdminClient.XSRF_RE.search(page.text_body).group(1)
    short = await bob.browser.post(link, follow=False, data={"_xsrf": xsrf, "new_password": "short",
                                                             "repeat_password": "short"})
    assert short.status == 400 and re.search(r'id="invite-error"[^>]*>密码需 \d+ 到 \d+ 个字符', short.text_body)
    done = await bob.browser.post(link, follow=False, data={"_xsrf": xsrf, "new_password": PASSWORDS["bob"],
                                                            "repeat_password": PASSWORDS["bob"]})
    assert done.status == 303 and done.headers["Location"] == "/admin/me?done=welcome"
    me = await bob.get("/admin/me")
    assert me.status == 200 and 'id="me-name">bob<' in me.text_body and 'id="bind"' in me.text_body
    # Twice: refused with a page that says so.
    again = await bob.browser.get(link)
    assert again.status == 409 and "邀请链接已使用" in again.text_body
    again = await bob.browser.post(link, follow=False, data={"_xsrf": xsrf, "new_password": "another long one",
                                                             "repeat_password": "another long one"})
    assert again.status == 409
    assert (await (await clients()).login(PASSWORDS["bob"], username="bob")).status == 303


@pytest.mark.gen_test
async def test_an_invitation_expires_after_24_hours(services, admin_auth, clients, fake_clock, app_url):
    token = await services.admins.invite("bob", "viewer", by="test")
    fake_clock.advance(INVITE_SECONDS - 60)
    visitor = await clients()
    assert (await visitor.browser.get(f"{app_url}/admin/invite/{token}")).status == 200
    fake_clock.advance(61)
    page = await visitor.browser.get(f"{app_url}/admin/invite/{token}")
    assert page.status == 410 and "邀请链接已过期" in page.text_body
    with pytest.raises(AdminError):
        await services.admins.use_invitation(token)
    # A renewed invitation replaces the old link.
    fresh = await services.admins.invite("bob", "editor", by="test")
    assert (await visitor.browser.get(f"{app_url}/admin/invite/{fresh}")).status == 200
    assert (await visitor.browser.get(f"{app_url}/admin/invite/{token}")).status == 404


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{}])
async def test_without_a_password_admin_exists_once_an_account_is_invited(services, admin_auth, clients, app_url,
                                                                          env_overrides):
    visitor = await clients()
    assert (await visitor.get("/admin/login")).status == 404
    token = await services.admins.invite("alice", "owner", by="cli")
    assert (await visitor.get("/admin/login")).status == 200
    assert (await visitor.browser.get(f"{app_url}/admin/invite/{token}")).status == 200
    # With no WX_ADMIN_PASSWORD there is no bootstrap owner to sign in as.
    assert (await visitor.login(ADMIN_PASSWORD)).status == 403
    await services.admins.use_invitation(token)
    await admin_auth.set_password("alice", PASSWORDS["alice"], by="test")
    await clients("alice")


@pytest.mark.gen_test
async def test_names_and_roles_are_checked(services):
    for name in ["", "Alice", "a" * 33, "al ice", "<b>", "ali/ce", "名字"]:
        with pytest.raises(AdminError, match="name"):
            await services.admins.invite(name, "viewer", by="test")
    with pytest.raises(AdminError, match="role"):
        await services.admins.invite("alice", "root", by="test")
    assert await services.store.list_admins() == []


# ---- who did it, and immediate effect ------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_audit_log_names_the_admin(services, admin_auth, clients):
    await add_admin(services, admin_auth, "bob", "editor")
    editor = await clients("bob")
    assert (await editor.post("/admin/states", {"key": "score", "page": "/wx/page/me"})).status == 303
    assert (await editor.post("/admin/replies", {"welcome": "hi {links}", "default_reply": ""})).status == 303
    owner = await clients("admin")
    assert (await owner.post("/admin/admins/bob/role", {"role": "viewer"})).status == 303
    audit = await services.store.recent_audit(20)
    by_action = {doc["action"]: doc["who"] for doc in audit}
    assert by_action["state.set"] == "bob@127.0.0.1"
    assert by_action["setting.set"] == "bob@127.0.0.1"
    assert by_action["admin.role"] == "admin@127.0.0.1"
    assert (await services.store.get_state("score"))["updated_by"] == "bob@127.0.0.1"
    page = await owner.get("/admin/audit")
    assert "bob@127.0.0.1" in page.text_body and "admin.role" in page.text_body
    assert not any("password_hash" in repr(doc) for doc in audit)


@pytest.mark.gen_test
async def test_a_role_change_and_a_disable_reach_every_copy_of_the_cookie_at_once(services, admin_auth, clients,
                                                                                  app_url):
    await add_admin(services, admin_auth, "bob", "editor")
    bob = await clients("bob")
    copy = AdminClient(copy_of(bob, app_url), app_url)
    try:
        assert (await copy.post("/admin/states", {"key": "one", "page": "/wx/page/me"})).status == 303
        owner = await clients("admin")
        assert (await owner.post("/admin/admins/bob/role", {"role": "viewer"})).status == 303
        for client in (bob, copy):
            response = await client.post("/admin/states", {"key": "two", "page": "/wx/page/me"})
            assert response.status == 403
            assert (await client.get("/admin/states")).status == 200  # still reads
        assert await services.store.get_state("two") is None
        assert (await owner.post("/admin/admins/bob/disable")).status == 303
        for client in (bob, copy):
            response = await client.get("/admin/states")
            assert response.status == 302 and response.headers["Location"].startswith("/admin/login")
        assert (await (await clients()).login(PASSWORDS["bob"], username="bob")).status == 403
    finally:
        await copy.browser.close()


@pytest.mark.gen_test
async def test_changing_a_password_ends_the_other_sessions(services, admin_auth, clients, app_url):
    await add_admin(services, admin_auth, "bob", "editor")
    bob = await clients("bob")
    copy = AdminClient(copy_of(bob, app_url), app_url)
    try:
        wrong = await bob.post("/admin/me/password", {"password": "not it at all", "new_password": "a brand new one",
                                                      "repeat_password": "a brand new one"})
        assert wrong.status == 403
        response = await bob.post("/admin/me/password", {"password": PASSWORDS["bob"], "new_password": "a brand new one",
                                                         "repeat_password": "a brand new one"})
        assert response.status == 303
        assert (await bob.get("/admin/states")).status == 200   # this browser got a new session
        assert (await copy.get("/admin/states")).status == 302  # the copy of the old one is over
        assert (await (await clients()).login(PASSWORDS["bob"], username="bob")).status == 403
        assert (await (await clients()).login("a brand new one", username="bob")).status == 303
    finally:
        await copy.browser.close()


@pytest.mark.gen_test
async def test_unknown_names_get_the_same_answer_as_wrong_passwords(services, admin_auth, clients):
    await add_admin(services, admin_auth, "bob", "editor")
    visitor = await clients()
    unknown = await visitor.login(PASSWORDS["bob"], username="nobody")
    wrong = await visitor.login("wrong password", username="bob")
    assert unknown.status == wrong.status == 403
    assert "用户名或密码错误" in unknown.text_body and "用户名或密码错误" in wrong.text_body
    invited = await services.admins.invite("carol", "viewer", by="test")
    assert invited and (await visitor.login("", username="carol")).status == 403  # no password yet


def invite_link(page: str) -> str:
    return re.search(r'<code id="invite-url">([^<]+)</code>', page).group(1)


async def accept(client: AdminClient, link: str, password: str) -> int:
    page = await client.browser.get(link)
    assert page.status == 200, page.status
    xsrf = AdminClient.XSRF_RE.search(page.text_body).group(1)
    done = await client.browser.post(link, follow=False, data={"_xsrf": xsrf, "new_password": password,
                                                               "repeat_password": password})
    return done.status


@pytest.mark.gen_test(timeout=60)
async def test_a_new_invitation_lets_a_disabled_admin_back_in_and_replaces_a_forgotten_password(
        services, admin_auth, clients, app_url):
    await add_admin(services, admin_auth, "bob", "editor")
    bob = await clients("bob")
    copy = AdminClient(copy_of(bob, app_url), app_url)
    try:
        owner = await clients("admin")
        # Forgotten password: the old one stops working and every copy of the session ends at once.
        page = await owner.post("/admin/admins/bob/reinvite")
        assert page.status == 200 and "<code>bob</code> 的邀请链接" in page.text_body
        first = invite_link(page.text_body)
        for client in (bob, copy):
            assert (await client.get("/admin/states")).status == 302
        assert (await (await clients()).login(PASSWORDS["bob"], username="bob")).status == 403
        # Disabled, then let back in: only the newest link works, the role is kept.
        assert (await owner.post("/admin/admins/bob/disable")).status == 303
        second = invite_link((await owner.post("/admin/admins/bob/reinvite")).text_body)
        assert (await (await clients()).browser.get(first)).status == 404  # replaced: no such link any more
        assert await accept(await clients(), second, "bob's new long password") == 303
        account = await services.admins.get("bob")
        assert (account["status"], account["role"]) == ("active", "editor")
        assert (await (await clients()).login("bob's new long password", username="bob")).status == 303
        actions = [d["action"] for d in await services.store.recent_audit(10) if d.get("target") == "bob"]
        assert actions.count("admin.reinvite") == 2
    finally:
        await copy.browser.close()


@pytest.mark.gen_test
async def test_a_new_invitation_is_refused_for_oneself_the_bootstrap_owner_and_unknown_names(services, admin_auth,
                                                                                                clients):
    await add_admin(services, admin_auth, "alice", "owner")
    alice = await clients("alice")
    before = await snapshot(services.store)
    for name, words in (("alice", "修改自己的密码"), ("admin", "WX_ADMIN_PASSWORD"), ("nobody", "nobody")):
        response = await alice.post(f"/admin/admins/{name}/reinvite")
        assert response.status == 409 and words in response.text_body and "invite-url" not in response.text_body, name
    assert 'id="reinvite-alice"' not in (await alice.get("/admin/admins")).text_body
    assert await snapshot(services.store) == before
    assert (await alice.get("/admin/states")).status == 200  # still signed in


@pytest.mark.gen_test
async def test_an_admin_unbinds_their_wechat_and_scanning_stops(services, admin_auth, clients):
    await add_admin(services, admin_auth, "vera", "viewer")
    await services.admins.bind("vera", "o" + "V" * 27, by="test")
    vera = await clients("vera")
    page = await vera.get("/admin/me")
    assert 'id="wechat-bound"' in page.text_body and 'id="unbind"' in page.text_body
    response = await vera.post("/admin/me/unbind")  # a viewer's own account: allowed
    assert response.status == 303 and response.headers["Location"] == "/admin/me?done=unbound"
    assert (await services.admins.get("vera")).get("wechat_openid") is None
    assert await services.admins.by_openid("o" + "V" * 27) is None
    page = await vera.get("/admin/me?done=unbound")
    assert "已解除绑定微信" in page.text_body and 'id="wechat-none"' in page.text_body and 'id="unbind"' not in page.text_body
    assert (await services.store.recent_audit(1))[0]["action"] == "admin.unbind"
