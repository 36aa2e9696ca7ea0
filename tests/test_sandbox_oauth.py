"""The sandbox's web authorization over real HTTP: authorize page, consent, sns/ APIs (§6)."""

import json
import re
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from conftest import APPID, DESKTOP_UA, SECRET, WECHAT_UA
from server import i18n
from server.sandbox import Sandbox, make_sandbox_app
from server.sandbox.base import FOLLOWER_COOKIE
from server.wechat.oauth import authorize_url
from server.sandbox.state import ALICE, BOB, MALLORY, SNAPSHOT  # the stand-in's demo followers

CALLBACK = "http://app.test:8000/wx/page/wxauthor"


class FakeClock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sandbox(clock):
    return Sandbox(APPID, SECRET, "token", app_name="成绩查询 Grades", clock=clock)


@pytest.fixture
def app(sandbox):
    return make_sandbox_app(sandbox)


async def fetch(http_client, url, *, cookie=None, **kwargs):
    headers = kwargs.pop("headers", {})
    headers.setdefault("User-Agent", WECHAT_UA)  # the authorize page works only inside WeChat
    if cookie:
        headers["Cookie"] = f"{FOLLOWER_COOKIE}={cookie}"
    return await http_client.fetch(url, raise_error=False, follow_redirects=False,
                                   headers=headers, **kwargs)


def query_of(location):
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query,
                                           keep_blank_values=True).items()}


async def sns(http_client, url, path, **params):
    resp = await fetch(http_client, f"{url}{path}?{urlencode(params)}")
    assert resp.code == 200
    return json.loads(resp.body)


async def exchange(http_client, url, code, appid=APPID, secret=SECRET):
    return await sns(http_client, url, "/sns/oauth2/access_token", appid=appid, secret=secret,
                     code=code, grant_type="authorization_code")


# -- the authorize page ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_snsapi_base_redirects_straight_back_with_code_and_state(http_client, url,
                                                                        sandbox):
    resp = await fetch(http_client, authorize_url(url, APPID, CALLBACK, "snsapi_base", "k1"),
                       cookie=BOB)
    assert resp.code == 302
    location = resp.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    args = query_of(location)
    assert args["state"] == "k1"
    assert sandbox.codes[args["code"]].openid == BOB
    assert sandbox.codes[args["code"]].scope == "snsapi_base"
    assert sandbox.calls["/connect/oauth2/authorize"] == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("scope", ["snsapi_base", "snsapi_userinfo"])
async def test_outside_wechat_the_authorize_page_is_a_dead_end_like_wechats(http_client, url, sandbox, scope):
    resp = await fetch(http_client, authorize_url(url, APPID, CALLBACK, scope, "k1"), cookie=BOB,
                       headers={"User-Agent": DESKTOP_UA})
    assert resp.code == 200 and "请在微信客户端打开链接" in resp.body.decode()
    assert "Location" not in resp.headers and not sandbox.codes


@pytest.mark.gen_test
async def test_a_callback_with_its_own_query_keeps_it(http_client, url):
    callback = CALLBACK + "?next=%2Fwx%2Fpage%2Fa"
    resp = await fetch(http_client, authorize_url(url, APPID, callback, "snsapi_base", "k1"))
    args = query_of(resp.headers["Location"])
    assert args["next"] == "/wx/page/a" and args["code"] and args["state"] == "k1"


@pytest.mark.gen_test
async def test_state_is_optional(http_client, url):
    query = (f"appid={APPID}&redirect_uri={quote(CALLBACK, safe='')}"
             "&response_type=code&scope=snsapi_base")
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize?{query}")
    assert resp.code == 302
    assert query_of(resp.headers["Location"])["state"] == ""


@pytest.mark.gen_test
async def test_snsapi_userinfo_shows_a_consent_page_in_the_phones_language(http_client, url, sandbox):
    resp = await fetch(http_client,
                       authorize_url(url, APPID, CALLBACK, "snsapi_userinfo", "k2"))
    assert resp.code == 200
    page = resp.body.decode()
    assert "成绩查询 Grades" in page
    # No Accept-Language: Chinese, as WeChat on a Chinese phone.
    assert 'lang="zh-CN"' in page and "申请获得你的昵称、头像" in page and ">允许</button>" in page
    assert "Wants your nickname" not in page and "Allow" not in page
    assert "Accept-Language" in resp.headers.get_list("Vary")
    en = await fetch(http_client, authorize_url(url, APPID, CALLBACK, "snsapi_userinfo", "k2"),
                     headers={"Accept-Language": "en-GB,en;q=0.9"})
    english = en.body.decode()
    assert en.code == 200 and 'lang="en-US"' in english and "<title>成绩查询 Grades asks for authorization</title>" in english
    assert "Wants your nickname and avatar" in english and ">Allow</button>" in english and ">Refuse</button>" in english
    assert "申请获得" not in english and "允许" not in english
    # A language picked on the server's pages (or the chat page) wins over the browser: cookies are
    # per host, so the stand-in reads the same one (the authorize URL itself takes no ?lang=, as WeChat's).
    picked = await fetch(http_client, authorize_url(url, APPID, CALLBACK, "snsapi_userinfo", "k2"),
                         headers={"Cookie": f"{i18n.LANG_COOKIE}=en_US", "Accept-Language": "zh-CN"})
    assert "Wants your nickname and avatar" in picked.body.decode()
    assert 'name="action" value="allow"' in page and 'name="action" value="refuse"' in page
    assert f'name="redirect_uri" value="{CALLBACK}"' in page
    assert 'name="state" value="k2"' in page
    assert "Alice 小明" in page  # the default follower
    assert not sandbox.codes  # no code before consent


@pytest.mark.gen_test
async def test_consent_allow_redirects_with_a_userinfo_code(http_client, url, sandbox):
    form = {"appid": APPID, "redirect_uri": CALLBACK, "response_type": "code",
            "scope": "snsapi_userinfo", "state": "k2", "action": "allow"}
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize", method="POST",
                       body=urlencode(form), cookie=BOB)
    assert resp.code == 302
    args = query_of(resp.headers["Location"])
    assert args["state"] == "k2"
    assert sandbox.codes[args["code"]].openid == BOB
    assert sandbox.codes[args["code"]].scope == "snsapi_userinfo"


@pytest.mark.gen_test
async def test_consent_refuse_redirects_with_state_and_no_code(http_client, url, sandbox):
    form = {"appid": APPID, "redirect_uri": CALLBACK, "response_type": "code",
            "scope": "snsapi_userinfo", "state": "k2", "action": "refuse"}
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize", method="POST",
                       body=urlencode(form))
    assert resp.code == 302
    assert resp.headers["Location"] == CALLBACK + "?state=k2"
    assert not sandbox.codes


@pytest.mark.gen_test
async def test_consent_post_is_validated_again(http_client, url):
    form = {"appid": APPID, "redirect_uri": "javascript:alert(1)", "response_type": "code",
            "scope": "snsapi_userinfo", "state": "k2", "action": "allow"}
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize", method="POST",
                       body=urlencode(form))
    assert resp.code == 400 and "Location" not in resp.headers


@pytest.mark.gen_test
async def test_consent_page_escapes_a_script_nickname(http_client, url):
    resp = await fetch(http_client,
                       authorize_url(url, APPID, CALLBACK, "snsapi_userinfo", "k"),
                       cookie=MALLORY)
    page = resp.body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]


@pytest.mark.gen_test
async def test_consent_page_escapes_an_echoed_redirect_uri(http_client, url):
    hostile = 'http://app.test/cb?x="><script>alert(2)</script>'
    resp = await fetch(http_client,
                       authorize_url(url, APPID, hostile, "snsapi_userinfo", "k"))
    page = resp.body.decode()
    assert resp.code == 200
    assert "<script>alert(2)" not in page
    assert "&quot;&gt;&lt;script&gt;alert(2)" in page


@pytest.mark.gen_test
async def test_snapshot_user_sees_the_virtual_data_note(http_client, url):
    resp = await fetch(http_client,
                       authorize_url(url, APPID, CALLBACK, "snsapi_userinfo", "k"),
                       cookie=SNAPSHOT)
    assert "is_snapshotuser=1" in resp.body.decode()


R = quote(CALLBACK, safe="")


@pytest.mark.parametrize("query", [
    f"redirect_uri={R}&appid={APPID}&response_type=code&scope=snsapi_base&state=s",
    f"appid={APPID}&response_type=code&redirect_uri={R}&scope=snsapi_base&state=s",
    f"appid={APPID}&redirect_uri={R}&scope=snsapi_base&response_type=code&state=s",
    f"appid={APPID}&redirect_uri={R}&response_type=code&state=s&scope=snsapi_base",
    f"appid={APPID}&redirect_uri={R}&response_type=code&scope=snsapi_base&state=s&state=t",
    f"appid={APPID}&redirect_uri={R}&response_type=code&scope=snsapi_base&extra=1",
    f"appid={APPID}&redirect_uri={R}&response_type=code",
])
@pytest.mark.gen_test
async def test_parameters_out_of_order_show_an_error_page(http_client, url, sandbox, query):
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize?{query}")
    assert resp.code == 400
    assert "Location" not in resp.headers
    assert "参数错误" in resp.body.decode()
    assert not sandbox.codes


@pytest.mark.gen_test
async def test_the_authorize_error_page_is_chinese_by_default_and_english_when_asked(http_client, url):
    query = f"appid=&redirect_uri={quote(CALLBACK, safe='')}&response_type=code&scope=snsapi_base&state=s"
    zh = await fetch(http_client, f"{url}/connect/oauth2/authorize?{query}")
    page = zh.body.decode()
    assert zh.code == 400 and "<title>微信授权错误</title>" in page and "<h1>10012 appid 参数为空</h1>" in page
    assert "is empty" not in page and "Authorization error" not in page
    en = await fetch(http_client, f"{url}/connect/oauth2/authorize?{query}", headers={"Accept-Language": "en"})
    page = en.body.decode()
    assert en.code == 400 and "<title>WeChat authorization error</title>" in page and "<h1>10012 appid is empty</h1>" in page
    assert not re.search("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", page), page


@pytest.mark.parametrize("appid, redirect_uri, response_type, scope, state, shown", [
    ("", CALLBACK, "code", "snsapi_base", "s", "10012"),
    ("wx0000000000000bad", CALLBACK, "code", "snsapi_base", "s", "10016"),
    (APPID, "", "code", "snsapi_base", "s", "10011"),
    (APPID, "javascript:alert(1)", "code", "snsapi_base", "s", "10003"),
    (APPID, "/relative/path", "code", "snsapi_base", "s", "10003"),
    (APPID, "http://app.test/a\r\nSet-Cookie: x=1", "code", "snsapi_base", "s", "10003"),
    (APPID, CALLBACK, "token", "snsapi_base", "s", "response_type"),
    (APPID, CALLBACK, "code", "", "s", "10010"),
    (APPID, CALLBACK, "code", "snsapi_login", "s", "10005"),
    (APPID, CALLBACK, "code", "snsapi_base", "a-b", "state"),
    (APPID, CALLBACK, "code", "snsapi_base", "a" * 129, "state"),
])
@pytest.mark.gen_test
async def test_bad_parameters_show_wechats_error_codes(
        http_client, url, sandbox, appid, redirect_uri, response_type, scope, state, shown):
    query = (f"appid={quote(appid)}&redirect_uri={quote(redirect_uri, safe='')}"
             f"&response_type={response_type}&scope={scope}&state={quote(state)}")
    resp = await fetch(http_client, f"{url}/connect/oauth2/authorize?{query}")
    assert resp.code == 400
    assert "Location" not in resp.headers
    assert shown in resp.body.decode()
    assert not sandbox.codes


@pytest.mark.gen_test
async def test_a_128_character_state_is_fine(http_client, url):
    resp = await fetch(http_client,
                       authorize_url(url, APPID, CALLBACK, "snsapi_base", "A" * 128))
    assert resp.code == 302


@pytest.mark.gen_test
async def test_callback_domain_must_match_when_configured(http_client, url, sandbox):
    sandbox.callback_domain = "app.test"
    ok = await fetch(http_client, authorize_url(url, APPID, CALLBACK, "snsapi_base", "s"))
    assert ok.code == 302
    foreign = await fetch(http_client, authorize_url(
        url, APPID, "http://pay.app.test/cb", "snsapi_base", "s"))
    assert foreign.code == 400 and "10003" in foreign.body.decode()


# -- /sns/oauth2/access_token (§6.4) -----------------------------------------------------


@pytest.mark.gen_test
async def test_exchange_answers_the_documented_fields(http_client, url, sandbox):
    resp = await fetch(http_client, f"{url}/sns/oauth2/access_token?" + urlencode({
        "appid": APPID, "secret": SECRET, "code": sandbox.mint_code(ALICE),
        "grant_type": "authorization_code"}))
    # WeChat labels this JSON text/plain; clients must parse it regardless.
    assert resp.headers["Content-Type"].startswith("text/plain")
    answer = json.loads(resp.body)
    assert set(answer) == {"access_token", "expires_in", "refresh_token", "openid", "scope"}
    assert answer["expires_in"] == 7200 and answer["openid"] == ALICE


@pytest.mark.gen_test
async def test_unionid_only_with_snsapi_userinfo(http_client, url, sandbox):
    base = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_base"))
    full = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_userinfo"))
    assert "unionid" not in base
    assert full["unionid"] == "uSandboxAlice000000000000000"


@pytest.mark.gen_test
async def test_is_snapshotuser_only_for_snapshot_users(http_client, url, sandbox):
    snapshot = await exchange(http_client, url, sandbox.mint_code(SNAPSHOT, "snsapi_userinfo"))
    alice = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_userinfo"))
    assert snapshot["is_snapshotuser"] == 1
    assert "is_snapshotuser" not in alice


@pytest.mark.gen_test
async def test_a_code_works_once(http_client, url, sandbox):
    code = sandbox.mint_code(ALICE)
    assert "openid" in await exchange(http_client, url, code)
    assert (await exchange(http_client, url, code))["errcode"] == 40163


@pytest.mark.gen_test
async def test_a_code_expires_after_five_minutes(http_client, url, sandbox, clock):
    fresh, stale = sandbox.mint_code(ALICE), sandbox.mint_code(ALICE)
    clock.now += 299
    assert "openid" in await exchange(http_client, url, fresh)
    clock.now += 1
    assert (await exchange(http_client, url, stale))["errcode"] == 42003


@pytest.mark.parametrize("params, errcode", [
    ({"code": "0" * 32}, 40029),
    ({"appid": "wx0000000000000bad"}, 40013),
    ({"secret": "wrong"}, 40125),
    ({"code": ""}, 41008),
    ({"grant_type": "client_credential"}, 40002),
])
@pytest.mark.gen_test
async def test_exchange_errcodes(http_client, url, sandbox, params, errcode):
    query = {"appid": APPID, "secret": SECRET, "code": sandbox.mint_code(ALICE),
             "grant_type": "authorization_code", **params}
    answer = await sns(http_client, url, "/sns/oauth2/access_token", **query)
    assert answer["errcode"] == errcode
    assert answer["errmsg"]


@pytest.mark.gen_test
async def test_a_failed_exchange_does_not_use_up_the_code(http_client, url, sandbox):
    code = sandbox.mint_code(ALICE)
    assert (await exchange(http_client, url, code, secret="wrong"))["errcode"] == 40125
    assert (await exchange(http_client, url, code))["openid"] == ALICE


# -- refresh, userinfo, auth (§6.5-§6.7) --------------------------------------------------


@pytest.mark.gen_test
async def test_refresh_token_lives_thirty_days(http_client, url, sandbox, clock):
    tokens = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_userinfo"))
    params = {"appid": APPID, "grant_type": "refresh_token",
              "refresh_token": tokens["refresh_token"]}
    refreshed = await sns(http_client, url, "/sns/oauth2/refresh_token", **params)
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] == tokens["refresh_token"]
    assert refreshed["scope"] == "snsapi_userinfo" and refreshed["openid"] == ALICE
    clock.now += 30 * 24 * 3600
    assert (await sns(http_client, url, "/sns/oauth2/refresh_token", **params))["errcode"] == 42002
    params["refresh_token"] = "bogus"
    assert (await sns(http_client, url, "/sns/oauth2/refresh_token", **params))["errcode"] == 40030


@pytest.mark.gen_test
async def test_userinfo_fields_after_the_2021_change(http_client, url, sandbox):
    tokens = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_userinfo"))
    info = await sns(http_client, url, "/sns/userinfo", access_token=tokens["access_token"],
                     openid=ALICE, lang="zh_CN")
    assert info["nickname"] == "Alice 小明"
    assert info["sex"] == 0 and info["province"] == info["city"] == info["country"] == ""
    assert info["privilege"] == []
    assert info["headimgurl"] == f"{url}/static/avatars/alice.svg"
    assert info["unionid"] == tokens["unionid"]
    avatar = await fetch(http_client, info["headimgurl"])
    assert avatar.code == 200


@pytest.mark.gen_test
async def test_userinfo_errcodes(http_client, url, sandbox, clock):
    base = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_base"))
    full = await exchange(http_client, url, sandbox.mint_code(ALICE, "snsapi_userinfo"))

    async def userinfo(token, openid=ALICE):
        return (await sns(http_client, url, "/sns/userinfo", access_token=token,
                          openid=openid)).get("errcode")

    assert await userinfo(base["access_token"]) == 48001
    assert await userinfo("bogus") == 40001
    assert await userinfo(full["refresh_token"]) == 40001  # not an access token
    assert await userinfo(full["access_token"], BOB) == 40003
    clock.now += 7200
    assert await userinfo(full["access_token"]) == 42001


@pytest.mark.gen_test
async def test_sns_auth(http_client, url, sandbox, clock):
    tokens = await exchange(http_client, url, sandbox.mint_code(ALICE))

    async def auth(token, openid=ALICE):
        return (await sns(http_client, url, "/sns/auth", access_token=token,
                          openid=openid))["errcode"]

    assert await auth(tokens["access_token"]) == 0
    assert await auth(tokens["access_token"], BOB) == 40003
    clock.now += 7200
    assert await auth(tokens["access_token"]) == 42001
