"""/admin sign-in over real HTTP: password, lockout, xsrf, session expiry, security headers, admin off."""

from __future__ import annotations

import json
import re
import time

import pytest
from argon2 import PasswordHasher
from tornado.web import create_signed_value

from conftest import ADMIN_PASSWORD, COOKIE_SECRET, AdminClient
from server.admin_auth import (ADMIN_COOKIE, FAILURE_WINDOW, IDLE_SECONDS, LOCK_SECONDS, MAX_FAILURES, SESSION_SECONDS,
                               AdminAuth)

ADMIN_PAGES = ["/admin/states", "/admin/replies", "/admin/users", "/admin/menu", "/admin/audit"]


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


async def signed_in(admin: AdminClient) -> bool:
    response = await admin.get("/admin/states")
    return response.status == 200


# ---- admin off ---------------------------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{}])
async def test_admin_is_absent_when_no_password_is_set(http_server, browser, app_url, env_overrides):
    for path in ["/admin", "/admin/login", *ADMIN_PAGES]:
        response = await browser.get(app_url + path, follow=False)
        assert response.status == 404, path
    # Even a POST without an xsrf token answers 404, not 403: nothing reveals that admin exists.
    response = await browser.post(app_url + "/admin/login", follow=False, data={"password": "x"})
    assert response.status == 404


# ---- signing in --------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_pages_ask_for_sign_in_first(admin):
    for path in ["/admin", *ADMIN_PAGES]:
        response = await admin.get(path, follow=True)
        assert admin.browser.hops[-1].startswith(admin.base + "/admin/login"), path
        assert 'name="password"' in response.text_body


@pytest.mark.gen_test
async def test_right_password_signs_in_and_returns_to_the_page_asked_for(admin):
    await admin.get("/admin/users", follow=True)
    next_url = re.search(r'name="next" value="([^"]+)"', (await admin.get(admin.browser.hops[-1][len(admin.base):])).text_body).group(1)
    assert next_url == "/admin/users"
    response = await admin.login(next=next_url)
    assert response.status == 303 and response.headers["Location"] == "/admin/users"
    cookie = [v for k, v in response.headers.items() if k.lower() == "set-cookie" and v.startswith(ADMIN_COOKIE)][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert await signed_in(admin)


@pytest.mark.gen_test
async def test_wrong_password_is_refused(admin):
    response = await admin.login("wrong password")
    assert response.status == 403
    assert "用户名或密码错误" in response.text_body and f"还可尝试 {MAX_FAILURES - 1} 次" in response.text_body
    assert ADMIN_COOKIE not in response.headers.get("Set-Cookie", "")
    assert not await signed_in(admin)


@pytest.mark.gen_test
async def test_sign_in_speaks_chinese_by_default_and_english_when_the_browser_asks(admin):
    english = {"Accept-Language": "en-US,en;q=0.9"}
    page = await admin.get("/admin/login")
    assert '<html lang="zh-CN">' in page.text_body and "<h1>管理员登录</h1>" in page.text_body
    assert ">登录</button>" in page.text_body and "Sign in" not in page.text_body
    page = await admin.browser.get(admin.base + "/admin/login", headers=english)
    assert '<html lang="en-US">' in page.text_body and "<h1>Admin sign-in</h1>" in page.text_body
    assert ">Sign in</button>" in page.text_body and "管理员登录" not in page.text_body
    assert page.headers.getall("Vary") == ["Accept-Language", "Cookie"]  # a cache keeps the two apart
    wrong = await admin.browser.post(admin.base + "/admin/login", headers=english, follow=False,
                                     data={"_xsrf": await admin.xsrf(), "password": "wrong password"})
    assert wrong.status == 403
    assert f"Wrong password or name. {MAX_FAILURES - 1} more attempts" in wrong.text_body
    assert "用户名或密码错误" not in wrong.text_body
    # Signed in, the frame (the navigation, sign-out, the session-ended refusal) follows the reader too.
    await admin.login()
    page = await admin.browser.get(admin.base + "/admin/menu", headers=english)
    assert ">State map</a>" in page.text_body and ">Sign out</button>" in page.text_body
    assert "状态表" not in page.text_body and "退出" not in page.text_body
    page = await admin.get("/admin/menu")
    assert ">状态表</a>" in page.text_body and ">退出</button>" in page.text_body and "State map" not in page.text_body


@pytest.mark.gen_test
@pytest.mark.parametrize("password", ["", ADMIN_PASSWORD.upper(), ADMIN_PASSWORD + " ", "x" * 5000])
async def test_near_misses_are_wrong_passwords(admin, password):
    response = await admin.login(password)
    assert response.status == 403
    assert not await signed_in(admin)


@pytest.mark.gen_test
@pytest.mark.parametrize("next_url", ["//evil.example/admin", "https://evil.example/", "/admin/../wx/go/x",
                                      "/\\evil.example", "/adminx", "javascript:alert(1)", "/admin/%2F%2Fevil.example"])
async def test_sign_in_never_redirects_off_the_admin_pages(admin, next_url):
    # CWE-601: the `next` field is attacker-controlled (a link to /admin/login?next=...).
    response = await admin.login(next=next_url)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/states"


@pytest.mark.gen_test
async def test_logout_ends_the_session(admin):
    await admin.login()
    assert await signed_in(admin)
    response = await admin.post("/admin/logout")
    assert response.status == 303 and response.headers["Location"] == "/admin/login?out=1"
    assert not await signed_in(admin)


@pytest.mark.gen_test
async def test_logout_ends_every_copy_of_the_session_cookie(admin, app_url):
    import yarl

    from conftest import AdminClient, Browser

    await admin.login()
    copied = admin.browser.cookie(ADMIN_COOKIE)
    thief = Browser()
    try:
        thief.session.cookie_jar.update_cookies({ADMIN_COOKIE: copied}, response_url=yarl.URL(app_url))
        stolen = AdminClient(thief, app_url)
        assert await signed_in(stolen)  # a copy works while the session lives...
        await admin.post("/admin/logout")
        assert not await signed_in(stolen)  # ...and not a moment after sign-out
    finally:
        await thief.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_ADMIN_PASSWORD": PasswordHasher().hash("hashed secret")}])
async def test_an_argon2_hash_can_be_configured_instead_of_the_password(admin, env_overrides):
    assert (await admin.login(env_overrides["WX_ADMIN_PASSWORD"])).status == 403  # the hash is not the password
    assert (await admin.login("hashed secret")).status == 303
    assert await signed_in(admin)


@pytest.mark.gen_test
async def test_plain_password_is_hashed_once_with_argon2(admin_auth):
    first = await admin_auth.password_hash()
    assert first.startswith("$argon2id$") and ADMIN_PASSWORD not in first
    assert await admin_auth.password_hash() is first
    assert await admin_auth.verify_password(ADMIN_PASSWORD)


# ---- the lock after five failures (CWE-307) ----------------------------------------------------------

@pytest.mark.gen_test
async def test_five_failures_lock_the_address_for_a_minute(admin, fake_clock):
    for attempt in range(1, MAX_FAILURES):
        assert (await admin.login(f"guess {attempt}")).status == 403
    fifth = await admin.login("guess 5")
    assert fifth.status == 429
    assert "登录失败次数过多" in fifth.text_body and "请 60 秒后再试" in fifth.text_body
    assert fifth.headers["Retry-After"] == "60"
    # While locked even the right password is refused, and the page says why.
    fake_clock.advance(30)
    locked = await admin.login()
    assert locked.status == 429 and "请 30 秒后再试" in locked.text_body
    assert not await signed_in(admin)
    page = await admin.get("/admin/login")
    assert "请 30 秒后再试" in page.text_body and "disabled" in page.text_body
    # The lock ends after a minute.
    fake_clock.advance(LOCK_SECONDS - 30 + 1)
    assert (await admin.login()).status == 303
    assert await signed_in(admin)


@pytest.mark.gen_test
async def test_attempts_while_locked_do_not_extend_the_lock(admin, fake_clock):
    for attempt in range(MAX_FAILURES):
        await admin.login(f"guess {attempt}")
    for _ in range(10):
        fake_clock.advance(5)
        assert (await admin.login("still guessing")).status == 429
    fake_clock.advance(LOCK_SECONDS - 50 + 1)
    assert (await admin.login()).status == 303


@pytest.mark.gen_test
async def test_after_a_lock_five_new_failures_are_needed_to_lock_again(admin, fake_clock):
    for attempt in range(MAX_FAILURES):
        await admin.login(f"guess {attempt}")
    fake_clock.advance(LOCK_SECONDS + 1)
    for attempt in range(1, MAX_FAILURES):
        assert (await admin.login(f"again {attempt}")).status == 403
    assert (await admin.login("again 5")).status == 429


@pytest.mark.gen_test
async def test_old_failures_are_forgotten(admin, fake_clock):
    for attempt in range(MAX_FAILURES - 1):
        await admin.login(f"guess {attempt}")
    fake_clock.advance(FAILURE_WINDOW + 1)
    for attempt in range(MAX_FAILURES - 1):
        assert (await admin.login(f"later {attempt}")).status == 403


@pytest.mark.gen_test
async def test_success_clears_earlier_failures(admin):
    for attempt in range(MAX_FAILURES - 1):
        await admin.login(f"guess {attempt}")
    assert (await admin.login()).status == 303
    for attempt in range(MAX_FAILURES - 1):
        assert (await admin.login(f"guess again {attempt}")).status == 403


@pytest.mark.gen_test
async def test_lock_holds_across_processes(admin, admin_auth, fake_clock, config, mongo_uri):
    """Another process (own MongoDB client, own AdminAuth) sees the lock: it lives in MongoDB."""
    from server.admins import AdminAccounts
    from server.store import Store, make_client

    for attempt in range(MAX_FAILURES):
        await admin.login(f"guess {attempt}")
    client = make_client(mongo_uri)
    try:
        store = Store(client, config.db_name)
        other = AdminAuth(config, store, AdminAccounts(config, store, clock=fake_clock), clock=fake_clock)
        assert 0 < await other.locked_for("127.0.0.1") <= LOCK_SECONDS
        assert await other.locked_for("10.0.0.9") == 0  # the lock is per address
        result = await other.login("127.0.0.1", ADMIN_PASSWORD)
        assert not result.ok and result.locked_for > 0
    finally:
        await client.close()


@pytest.mark.gen_test
async def test_lock_check_does_not_trust_ttl_deletion(admin_auth, fake_clock, services):
    """Expired lock documents may linger (TTL runs once a minute, or never on some servers)."""
    for attempt in range(MAX_FAILURES):
        await admin_auth.login("10.1.1.1", f"guess {attempt}")
    assert await admin_auth.locked_for("10.1.1.1") > 0
    fake_clock.advance(LOCK_SECONDS + 1)
    assert await services.store.admin_attempts.count_documents({"ip": "10.1.1.1", "kind": "lock"}) == 1
    assert await admin_auth.locked_for("10.1.1.1") == 0


# ---- xsrf ----------------------------------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("path,data", [
    ("/admin/login", {"password": ADMIN_PASSWORD}),
    ("/admin/logout", {}),
    ("/admin/states", {"key": "evil", "page": "/wx/page/me"}),
    ("/admin/states/score/delete", {}),
    ("/admin/replies", {"welcome": "pwned"}),
    ("/admin/menu", {"source": "json", "action": "save", "menu_json": '{"button": []}'}),
    ("/admin/menu/publish", {}),
])
async def test_post_without_xsrf_token_is_refused(admin, services, path, data):
    await services.store.set_state("score", {"page": "/wx/page/bind", "title": "成绩", "keywords": ["成绩"], "scope": "snsapi_base"}, by="t")
    await admin.login()
    response = await admin.post(path, data, xsrf=False)
    assert response.status == 403
    assert await services.store.get_state("score") is not None
    assert await services.store.get_state("evil") is None
    assert await services.store.get_setting("welcome") is None


@pytest.mark.gen_test
async def test_xsrf_token_from_another_browser_is_refused(admin, browser, app_url, services):
    import aiohttp

    await admin.login()
    stranger = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        # A forged form: the victim's session cookie but the attacker's own xsrf token.
        async with stranger.get(app_url + "/admin/login") as page:
            token = AdminClient.XSRF_RE.search(await page.text()).group(1)
        response = await admin.post("/admin/states", [("key", "evil"), ("page", "/wx/page/me"), ("_xsrf", token)], xsrf=False)
        assert response.status == 403
    finally:
        await stranger.close()
    assert await services.store.get_state("evil") is None


# ---- session expiry (CWE-613) ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_session_ends_after_idle_time(admin, fake_clock):
    await admin.login()
    fake_clock.advance(IDLE_SECONDS + 1)
    response = await admin.get("/admin/states")
    assert response.status == 302 and response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.gen_test
async def test_activity_keeps_the_session_alive_but_not_past_eight_hours(admin, fake_clock):
    await admin.login()
    elapsed = 0
    while elapsed + IDLE_SECONDS / 2 < SESSION_SECONDS:
        fake_clock.advance(IDLE_SECONDS / 2)
        elapsed += IDLE_SECONDS / 2
        assert await signed_in(admin), f"signed out after {elapsed / 3600:.1f} h of activity"
    fake_clock.advance(SESSION_SECONDS - elapsed + 1)
    assert not await signed_in(admin)


@pytest.mark.gen_test
async def test_expired_session_cannot_post(admin, fake_clock, services):
    await admin.login()
    await admin.xsrf()
    fake_clock.advance(IDLE_SECONDS + 1)
    response = await admin.post("/admin/states", {"key": "late", "page": "/wx/page/me"})
    assert response.status == 403 and "请重新登录" in response.text_body
    items = [("key", "late"), ("page", "/wx/page/me"), ("_xsrf", await admin.xsrf())]
    response = await admin.browser.post(admin.base + "/admin/states", follow=False, data=items,
                                        headers={"Accept-Language": "en-US"})
    assert response.status == 403 and "Your admin session has ended. Please sign in again" in response.text_body
    assert await services.store.get_state("late") is None


def _session_cookie(payload: dict) -> str:
    return create_signed_value(COOKIE_SECRET, ADMIN_COOKIE, json.dumps(payload)).decode()


@pytest.mark.gen_test
async def test_crafted_cookies_are_refused(admin, admin_auth, browser, app_url):
    now = time.time()
    genuine = json.loads(await admin_auth.issue_session())
    crafted = {
        "unsigned": json.dumps(genuine),
        "issued nine hours ago": _session_cookie({**genuine, "iat": now - 9 * 3600, "seen": now - 60}),
        "idle for an hour": _session_cookie({**genuine, "seen": now - 3600}),
        "issued in the future": _session_cookie({**genuine, "iat": now + 3600, "seen": now + 3600}),
        "other password": _session_cookie({**genuine, "pw": "0123456789abcdef"}),
        "not json": _session_cookie({}).replace("e30=", "bm9wZQ=="),
    }
    for name, value in crafted.items():
        browser.session.cookie_jar.clear()
        browser.session.cookie_jar.update_cookies({ADMIN_COOKIE: value}, response_url=__import__("yarl").URL(app_url))
        assert not await signed_in(admin), name
    browser.session.cookie_jar.update_cookies({ADMIN_COOKIE: _session_cookie(genuine)}, response_url=__import__("yarl").URL(app_url))
    assert await signed_in(admin)


# ---- headers (CWE-1021 clickjacking, CWE-79 XSS) ------------------------------------------------------------

@pytest.mark.gen_test
async def test_admin_pages_carry_security_headers_and_no_inline_script(admin):
    pages = [await admin.get("/admin/login")]
    await admin.login()
    for path in ADMIN_PAGES:
        pages.append(await admin.get(path))
    for response in pages:
        assert response.status == 200, response.url
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response.headers["Cache-Control"]
        body = response.text_body
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), "inline script"
        assert not re.search(r"\son[a-z]+\s*=", body), "inline event handler"
        assert not re.search(r"\sstyle\s*=", body), "inline style"
        assert 'name="_xsrf"' in body or "<form" not in body
        assert body.count("<form") == body.count('name="_xsrf"') + body.count('method="get"'), "a POST form without xsrf"
