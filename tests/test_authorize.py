"""Web authorization end to end over real HTTP: app ⇄ WeChat stand-in, with a real cookie jar."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import SECRET
from server.authorize import new_state_token
from server.sandbox.state import ALICE, MALLORY, SNAPSHOT  # the stand-in's demo followers

BIND = ("score", "/wx/page/bind", "查成绩", ["成绩"], "snsapi_base")
ME = ("me", "/wx/page/me", "我的资料", ["我的"], "snsapi_userinfo")


async def seed(services, *entries):
    for key, page, title, keywords, scope in entries:
        await services.store.set_state(key, {"page": page, "title": title, "keywords": keywords, "scope": scope}, by="test")
    await services.state_map.refresh()


def be(browser, sandbox, openid: str) -> None:
    """Makes the stand-in treat this browser as follower `openid` (its follower cookie)."""
    browser.session.cookie_jar.update_cookies({"wxsandbox_openid": openid})


async def consent(browser, response, action: str = "allow"):
    """Submits the stand-in's consent form (Allow or Refuse) as a person would."""
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', response.text_body))
    assert set(fields) >= {"appid", "redirect_uri", "scope", "state"}, response.text_body[:500]
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields["action"] = action
    return await browser.post(str(response.url), data=fields)


def callback_url(app_url, code=None, state=None) -> str:
    query = "&".join(f"{k}={v}" for k, v in (("code", code), ("state", state)) if v is not None)
    return f"{app_url}/wx/page/wxauthor?{query}"


async def authorize_hop(browser, app_url, key):
    """Starts /wx/go/<key> without following redirects; returns (state token, authorize URL)."""
    response = await browser.get(f"{app_url}/wx/go/{key}", follow=False)
    assert response.status == 302
    location = response.headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    return state, location


# ---- the happy paths ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_base_scope_link_lands_on_target_page_signed_in(app_url, services, sandbox, browser, config):
    await seed(services, BIND)
    be(browser, sandbox, ALICE)
    response = await browser.get(f"{app_url}/wx/go/score")
    assert response.status == 200, response.text_body[:300]
    assert str(response.url) == f"{app_url}/wx/page/bind"
    assert "绑定学号" in response.text_body
    hosts = [urlsplit(h).netloc for h in browser.hops]
    assert hosts[1] == urlsplit(config.open_base).netloc  # went through the authorize page
    user = await services.store.get_user(ALICE)
    assert user["scope"] == "snsapi_base" and user["login_count"] == 1
    assert "nickname" not in user  # base scope: no profile
    assert browser.cookie("wx_session")


@pytest.mark.gen_test
async def test_authorize_url_has_wechat_parameter_order(app_url, services, sandbox, browser, config):
    await seed(services, BIND)
    _state, location = await authorize_hop(browser, app_url, "score")
    assert location.startswith(f"{config.open_base}/connect/oauth2/authorize?appid={config.appid}&redirect_uri=")
    assert re.search(r"\?appid=[^&]+&redirect_uri=[^&]+&response_type=code&scope=snsapi_base&state=[a-zA-Z0-9]{32}#wechat_redirect$", location)
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in location


@pytest.mark.gen_test
async def test_userinfo_scope_shows_consent_then_profile_escaped(app_url, services, sandbox, browser):
    await seed(services, ME)
    be(browser, sandbox, MALLORY)
    page = await browser.get(f"{app_url}/wx/go/me")
    assert "申请获得你的昵称、头像" in page.text_body and "Allow" not in page.text_body  # no Accept-Language: Chinese
    response = await consent(browser, page)
    assert response.status == 200 and str(response.url).endswith("/wx/page/me")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text_body
    assert "<script>alert(1)</script>" not in response.text_body
    user = await services.store.get_user(MALLORY)
    assert user["nickname"] == "<script>alert(1)</script>"
    assert user["unionid"] == "uSandboxMallory0000000000000"
    assert user["scope"] == "snsapi_userinfo"
    assert user["headimgurl"] and user["privilege"] == []
    # WeChat answers these with 0 and "" for everyone since 2021-10-20: not stored.
    assert not {"sex", "province", "city", "country"} & set(user)


@pytest.mark.gen_test
async def test_second_login_counts_and_keeps_first_login_time(app_url, services, sandbox, browser):
    await seed(services, BIND)
    be(browser, sandbox, ALICE)
    await browser.get(f"{app_url}/wx/go/score")
    first = await services.store.get_user(ALICE)
    await browser.get(f"{app_url}/wx/go/score")
    second = await services.store.get_user(ALICE)
    assert second["login_count"] == 2
    assert second["created_at"] == first["created_at"]
    assert await services.store.users.count_documents({"openid": ALICE}) == 1


@pytest.mark.gen_test
async def test_snapshot_user_is_not_stored(app_url, services, sandbox, browser):
    await seed(services, ME)
    be(browser, sandbox, SNAPSHOT)
    page = await browser.get(f"{app_url}/wx/go/me")
    response = await consent(browser, page)
    assert response.status == 200 and "使用完整服务" in response.text_body
    assert await services.store.get_user(SNAPSHOT) is None
    assert browser.cookie("wx_session") is None


# ---- refusal, reloads, double callbacks ------------------------------------------------------------

@pytest.mark.gen_test
async def test_refusal_shows_friendly_page_with_retry(app_url, services, sandbox, browser):
    await seed(services, ME)
    page = await browser.get(f"{app_url}/wx/go/me")
    response = await consent(browser, page, action="refuse")
    assert response.status == 200
    assert "取消" in response.text_body and 'href="/wx/go/me"' in response.text_body
    assert await services.store.users.count_documents({}) == 0


def main_text(body: str) -> str:
    """The page's own words: <main>, without the language picker (which names each language in itself)."""
    return body.split("<main", 1)[1].split("</main>", 1)[0]


@pytest.mark.gen_test
async def test_sign_in_failure_page_is_chinese_by_default_and_english_when_the_browser_asks(app_url, services, sandbox,
                                                                                         browser):
    await seed(services, ME)
    page = await browser.get(f"{app_url}/wx/go/me")
    zh = await consent(browser, page, action="refuse")
    assert zh.status == 200 and 'lang="zh-CN"' in zh.text_body
    assert "<title>你取消了授权</title>" in zh.text_body and ">重试</a>" in zh.text_body
    assert "cancelled" not in zh.text_body and "Try again" not in zh.text_body
    browser.session.headers["Accept-Language"] = "en-US,en;q=0.9"  # every hop from now on, as a browser sends it
    page = await browser.get(f"{app_url}/wx/go/me")
    en = await consent(browser, page, action="refuse")
    assert en.status == 200 and 'lang="en-US"' in en.text_body and 'href="/wx/go/me"' in en.text_body
    assert "<title>You cancelled the sign-in</title>" in en.text_body and ">Try again</a>" in en.text_body
    assert "You cancelled the sign-in. Tap the button to try again when you are ready." in en.text_body
    assert not re.search("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", main_text(en.text_body)), main_text(en.text_body)


@pytest.mark.gen_test
async def test_reloaded_callback_ends_on_target_not_error(app_url, services, sandbox, browser):
    await seed(services, BIND)
    be(browser, sandbox, ALICE)
    await browser.get(f"{app_url}/wx/go/score")
    callback = browser.hops[2]
    assert "/wx/page/wxauthor?" in callback
    again = await browser.get(callback)
    assert again.status == 200 and str(again.url).endswith("/wx/page/bind")
    assert sandbox.calls["/sns/oauth2/access_token"] == 1  # the code was not sent twice


@pytest.mark.gen_test
async def test_double_callback_at_once_both_end_on_target(app_url, services, sandbox, browser):
    await seed(services, BIND)
    sandbox.latency = 0.3  # both requests are in flight together
    state, _location = await authorize_hop(browser, app_url, "score")
    code = sandbox.mint_code(ALICE, "snsapi_base")
    url = callback_url(app_url, code, state)
    first, second = await asyncio.gather(browser.get(url, follow=False), browser.get(url, follow=False))
    assert first.status == second.status == 302
    assert first.headers["Location"] == second.headers["Location"] == "/wx/page/bind"
    assert sandbox.calls["/sns/oauth2/access_token"] == 1
    assert (await services.store.get_user(ALICE))["login_count"] == 1


# ---- forged and broken callbacks -------------------------------------------------------------------

@pytest.mark.gen_test
async def test_callback_with_another_flows_state_cookie_is_refused(app_url, services, sandbox, browser, io_loop):
    """Login CSRF: an attacker's code and state land in a victim's browser that has its own flow."""
    from conftest import Browser

    await seed(services, BIND)
    attacker = Browser()
    try:
        attacker_state, _ = await authorize_hop(attacker, app_url, "score")
    finally:
        await attacker.close()
    attacker_code = sandbox.mint_code(MALLORY, "snsapi_base")
    await authorize_hop(browser, app_url, "score")  # the victim has a flow of their own
    response = await browser.get(callback_url(app_url, attacker_code, attacker_state))
    assert response.status == 403
    assert browser.cookie("wx_session") is None
    assert sandbox.calls["/sns/oauth2/access_token"] == 0
    assert await services.store.get_user(MALLORY) is None


@pytest.mark.gen_test
async def test_missing_state_cookie_restarts_once_then_asks_for_cookies(app_url, services, sandbox, browser):
    await seed(services, BIND)
    state, _ = await authorize_hop(browser, app_url, "score")
    browser.session.cookie_jar.clear()
    code = sandbox.mint_code(ALICE, "snsapi_base")
    response = await browser.get(callback_url(app_url, code, state), follow=False)
    assert response.status == 302  # restarted through a fresh, browser-bound authorization
    assert "/connect/oauth2/authorize?" in response.headers["Location"]
    new_state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    assert new_state != state
    browser.session.cookie_jar.clear()  # this browser really keeps no cookies
    code2 = sandbox.mint_code(ALICE, "snsapi_base")
    response = await browser.get(callback_url(app_url, code2, new_state))
    assert response.status == 400 and "Cookie" in response.text_body
    assert sandbox.calls["/sns/oauth2/access_token"] == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_STRICT_STATE": "0"}])
async def test_lenient_state_accepts_missing_cookie(app_url, services, sandbox, browser, env_overrides):
    await seed(services, BIND)
    state, _ = await authorize_hop(browser, app_url, "score")
    browser.session.cookie_jar.clear()
    code = sandbox.mint_code(ALICE, "snsapi_base")
    response = await browser.get(callback_url(app_url, code, state))
    assert response.status == 200 and str(response.url).endswith("/wx/page/bind")


@pytest.mark.gen_test
async def test_hand_made_link_with_plain_key_restarts_bound_flow(app_url, services, sandbox, browser):
    await seed(services, BIND)
    code = sandbox.mint_code(ALICE, "snsapi_base")
    response = await browser.get(callback_url(app_url, code, "score"), follow=False)
    assert response.status == 302 and response.headers["Location"] == "/wx/go/score"
    assert sandbox.calls["/sns/oauth2/access_token"] == 0
    final = await browser.get(callback_url(app_url, code, "score"))
    assert str(final.url).endswith("/wx/page/bind")


@pytest.mark.gen_test
@pytest.mark.parametrize("state", ["nosuchstate", new_state_token(), "bad-state!", "a" * 200, ""])
async def test_unknown_state_lands_on_default_page(app_url, services, sandbox, browser, config, state):
    response = await browser.get(callback_url(app_url, "somecode", state), follow=False)
    assert response.status == 302 and response.headers["Location"] == config.default_page
    assert browser.cookie("wx_session") is None


@pytest.mark.gen_test
async def test_expired_state_token_lands_on_default_page(app_url, services, sandbox, browser, config):
    await seed(services, BIND)
    state, _ = await authorize_hop(browser, app_url, "score")
    await services.store.oauth_states.update_one({"_id": state}, {"$set": {"expires_at": 0}})
    await services.store.oauth_states.delete_one({"_id": state})
    await services.store.oauth_states.insert_one({"_id": state, "key": "score", "target": "/wx/page/bind", "scope": "snsapi_base",
                                                  "retry": 0, "code": None, "result": None,
                                                  "expires_at": __import__("server.store").store.utcnow().replace(year=2000)})
    code = sandbox.mint_code(ALICE, "snsapi_base")
    response = await browser.get(callback_url(app_url, code, state), follow=False)
    assert response.headers["Location"] == config.default_page
    assert sandbox.calls["/sns/oauth2/access_token"] == 0


@pytest.mark.gen_test
async def test_unknown_go_key_is_a_404_page(app_url, services, sandbox, browser):
    response = await browser.get(f"{app_url}/wx/go/nosuchkey")
    assert response.status == 404 and "链接已失效" in response.text_body


# ---- WeChat errors ------------------------------------------------------------------------------

ERRORS = [
    (40029, 400, "/wx/go/score"), (40163, 400, "/wx/go/score"), (42003, 400, "/wx/go/score"),
    (40013, 500, None), (40125, 500, None), (48001, 500, None), (-1, 503, "/wx/go/score"),
]


@pytest.mark.gen_test
@pytest.mark.parametrize("errcode,status,retry", ERRORS)
async def test_wechat_errcode_ends_on_error_page(app_url, services, sandbox, browser, caplog, errcode, status, retry):
    await seed(services, BIND)
    sandbox.fail("/sns/oauth2/access_token", errcode=errcode)
    caplog.set_level(logging.INFO)
    response = await browser.get(f"{app_url}/wx/go/score")
    assert response.status == status
    assert "<h1" in response.text_body and "Traceback" not in response.text_body
    if retry:
        assert f'href="{retry}"' in response.text_body
    else:  # a set-up problem: trying again cannot help the follower
        assert '<a class="button"' not in response.text_body and "重试" not in response.text_body
    assert browser.cookie("wx_session") is None
    assert str(errcode) in caplog.text
    code = parse_qs(urlsplit(browser.hops[2]).query)["code"][0]
    assert code not in caplog.text and SECRET not in caplog.text


@pytest.mark.gen_test
@pytest.mark.parametrize("fault,status", [({"html": True}, 502), ({"delay": 10.0}, 504), ({"drop": True}, 502)])
async def test_wechat_broken_or_slow_ends_on_error_page_in_time(app_url, services, sandbox, browser, fault, status):
    await seed(services, BIND)
    sandbox.fail("/sns/oauth2/access_token", count=0, **fault)
    started = time.monotonic()
    response = await browser.get(f"{app_url}/wx/go/score")
    assert time.monotonic() - started < 6
    assert response.status == status and "<h1" in response.text_body
    # The server keeps serving.
    health = await browser.get(f"{app_url}/healthz")
    assert health.status == 200


@pytest.mark.gen_test
async def test_wechat_down_ends_on_error_page(app_url, services, config, browser, sandbox):
    """Nothing listens where WeChat should be: connection refused."""
    await seed(services, BIND)
    state, _ = await authorize_hop(browser, app_url, "score")
    services.wechat._api_base = "http://127.0.0.1:1"
    response = await browser.get(callback_url(app_url, "anycode", state))
    assert response.status == 502 and "<h1" in response.text_body


# ---- protected pages ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_protected_page_sends_visitor_through_flow_and_back_with_query(app_url, services, sandbox, browser):
    be(browser, sandbox, ALICE)
    response = await browser.get(f"{app_url}/wx/page/bind?from=menu&x=1")
    assert response.status == 200
    assert str(response.url) == f"{app_url}/wx/page/bind?from=menu&x=1"
    assert (await services.store.get_user(ALICE))["login_count"] == 1


@pytest.mark.gen_test
async def test_bind_form_validates_and_saves_with_xsrf(app_url, services, sandbox, browser):
    be(browser, sandbox, ALICE)
    page = await browser.get(f"{app_url}/wx/page/bind")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text_body).group(1)
    bad = await browser.post(f"{app_url}/wx/page/bind", data={"_xsrf": xsrf, "phone": "12345", "student_no": ""})
    assert bad.status == 400 and "11 位手机号" in bad.text_body
    assert "phone" not in await services.store.get_user(ALICE)
    no_xsrf = await browser.post(f"{app_url}/wx/page/bind", data={"phone": "13800138000"})
    assert no_xsrf.status == 403
    ok = await browser.post(f"{app_url}/wx/page/bind", data={"_xsrf": xsrf, "phone": "13800138000", "student_no": "S2024001"})
    assert ok.status == 200 and "已保存" in ok.text_body
    user = await services.store.get_user(ALICE)
    assert user["phone"] == "13800138000" and user["student_no"] == "S2024001"


@pytest.mark.gen_test
async def test_profile_and_bind_form_in_english_after_lang_en_us(app_url, services, sandbox, browser):
    be(browser, sandbox, ALICE)
    page = await browser.get(f"{app_url}/wx/page/bind")
    assert "绑定学号或手机" in page.text_body and "Student number" not in page.text_body
    page = await browser.get(f"{app_url}/wx/page/bind?lang=en_US")  # the picker's link; the cookie remembers it
    assert browser.cookie("wx_lang") == "en_US"
    assert "Bind your student number or mobile number" in page.text_body and "绑定学号" not in page.text_body
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text_body).group(1)
    bad = await browser.post(f"{app_url}/wx/page/bind", data={"_xsrf": xsrf, "phone": "", "student_no": "x!"})
    assert bad.status == 400
    assert 'id="student_no-error">A student number is 4-20 letters or digits.<' in bad.text_body
    assert not re.search("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", main_text(bad.text_body)), main_text(bad.text_body)
    # snsapi_userinfo: the follower agrees to share the profile; the page they come back to remembers English.
    me = await consent(browser, await browser.get(f"{app_url}/wx/page/me"))
    assert me.status == 200 and "<h1>My profile</h1>" in me.text_body and "Refresh from WeChat" in me.text_body
    zh = await browser.get(f"{app_url}/wx/page/me?lang=zh_CN")
    assert "<h1>我的资料</h1>" in zh.text_body and "My profile" not in zh.text_body


@pytest.mark.gen_test
async def test_profile_refresh_uses_stored_tokens(app_url, services, sandbox, browser):
    await seed(services, ME)
    be(browser, sandbox, ALICE)
    page = await consent(browser, await browser.get(f"{app_url}/wx/go/me"))
    sandbox.followers[ALICE].nickname = "Alice 新名字"
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text_body).group(1)
    response = await browser.post(f"{app_url}/wx/page/me", data={"_xsrf": xsrf})
    assert response.status == 200 and "Alice 新名字" in response.text_body
    assert sandbox.calls["/sns/auth"] == 1  # the old token was validated before use
    stored = await services.store.users.find_one({"openid": ALICE})
    assert "refresh_token" not in str(stored)  # sealed at rest
    assert stored["web_token"]["sealed"]


@pytest.mark.gen_test
async def test_profile_refresh_after_access_token_expiry_uses_refresh_token(app_url, services, sandbox, browser):
    await seed(services, ME)
    be(browser, sandbox, ALICE)
    page = await consent(browser, await browser.get(f"{app_url}/wx/go/me"))
    sandbox.advance(7300)  # the web access_token (7200 s) has expired, the refresh token has not
    await services.store.users.update_one({"openid": ALICE}, {"$set": {"web_token.access_expires_at": 0.0}})
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text_body).group(1)
    response = await browser.post(f"{app_url}/wx/page/me", data={"_xsrf": xsrf})
    assert response.status == 200 and "资料已更新" in response.text_body
    assert sandbox.calls["/sns/oauth2/refresh_token"] == 1


@pytest.mark.gen_test
async def test_uncaught_error_log_has_no_query_string(app_url, services, sandbox, browser, caplog):
    """A bug in a handler is logged with its path only: the query may hold a live code."""
    await seed(services, BIND)
    state, _ = await authorize_hop(browser, app_url, "score")

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    services.auth.complete = broken
    response = await browser.get(callback_url(app_url, "SECRETCODE123", state))
    assert response.status == 500 and "Traceback" not in response.text_body and "boom" not in response.text_body
    assert "boom" in caplog.text and "SECRETCODE123" not in caplog.text and state not in caplog.text


@pytest.mark.gen_test
async def test_logs_name_followers_by_tag_not_openid(app_url, services, sandbox, browser, caplog):
    from server.logtags import short_openid

    await seed(services, BIND)
    be(browser, sandbox, ALICE)
    caplog.set_level(logging.INFO)
    await browser.get(f"{app_url}/wx/go/score")
    assert short_openid(ALICE) in caplog.text
    assert ALICE not in caplog.text and ALICE[:10] not in caplog.text


def test_a_problem_outcome_keeps_its_words_through_mongodb():
    """A duplicate callback shows the first one's stored outcome: its Texts, still in the reader's language."""
    import bson

    from server import i18n
    from server.authorize import Outcome, outcome_doc, outcome_from_doc
    from server.i18n import T

    first = Outcome("problem", status=504, title=T("The sign-in did not finish"),
                    text=T("The sign-in is taking too long. Please tap the link again."), retry_url="/wx/go/me")
    again = outcome_from_doc(bson.decode(bson.encode(outcome_doc(first))))
    assert again == first
    assert i18n.say(again.title, i18n.locale("zh_CN")) == "登录未完成"
    assert i18n.say(again.title, i18n.locale("en_US")) == "The sign-in did not finish"
    # A result stored before the pages spoke two languages held plain words: shown as they are.
    old = outcome_from_doc({"kind": "problem", "status": 400, "title": "授权已失效", "text": "This sign-in link has expired."})
    assert i18n.say(old.title, i18n.locale("en_US")) == "授权已失效"
