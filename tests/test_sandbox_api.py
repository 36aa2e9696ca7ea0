"""The sandbox's cgi-bin/ APIs, control API, faults and latency, over real HTTP (§8)."""

import asyncio
import json
import logging
from urllib.parse import urlencode

import pytest
import tornado.httpclient

from server.sandbox import Sandbox, make_sandbox_app, start_sandbox, stop_sandbox
from server.sandbox.base import FOLLOWER_COOKIE
from conftest import APPID, SECRET
from server.sandbox.state import ALICE, BOB  # the stand-in's demo followers


@pytest.fixture
def sandbox():
    return Sandbox(APPID, SECRET, "token")


@pytest.fixture
def app(sandbox):
    return make_sandbox_app(sandbox)


@pytest.fixture
def call(http_client, url):
    """call(method, path, body=None, raw=None, **query) -> (status, headers, parsed JSON)."""

    async def call(method, path, body=None, *, raw=None, headers=None, **query):
        target = url + path + ("?" + urlencode(query) if query else "")
        if body is not None:
            raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        resp = await http_client.fetch(target, method=method, body=raw, headers=headers,
                                       raise_error=False, follow_redirects=False,
                                       allow_nonstandard_methods=True)
        try:
            parsed = json.loads(resp.body)
        except ValueError:
            parsed = None
        return resp.code, resp.headers, parsed

    return call


@pytest.fixture
def stable_token(call):
    async def stable_token(force_refresh=False, **overrides):
        body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET,
                "force_refresh": force_refresh, **overrides}
        return (await call("POST", "/cgi-bin/stable_token", body))[2]

    return stable_token


# -- global access_token (§8.1, §8.2) ----------------------------------------------------


@pytest.mark.gen_test
async def test_stable_token_is_the_same_while_valid(stable_token, call):
    first = await stable_token()
    again = await stable_token()
    assert again["access_token"] == first["access_token"]
    assert len(first["access_token"]) > 128  # real tokens are long (§8.1)
    assert 0 < first["expires_in"] <= 7200
    answer = (await call("GET", "/cgi-bin/menu/get", access_token=first["access_token"]))[2]
    assert answer["errcode"] == 46003  # the token works; there is just no menu yet


@pytest.mark.gen_test
async def test_force_refresh_replaces_the_stable_token(stable_token, call):
    first = (await stable_token())["access_token"]
    forced = (await stable_token(force_refresh=True))["access_token"]
    assert forced != first
    assert (await call("GET", "/cgi-bin/menu/get", access_token=first))[2]["errcode"] == 40001
    assert (await call("GET", "/cgi-bin/menu/get", access_token=forced))[2]["errcode"] == 46003


@pytest.mark.gen_test
async def test_stable_token_is_renewed_shortly_before_expiry(stable_token, sandbox):
    first = await stable_token()
    sandbox.advance(7200 - 299)  # §8.2: renewed within the last 5 minutes
    renewed = await stable_token()
    assert renewed["access_token"] != first["access_token"]
    assert renewed["expires_in"] == 7200


@pytest.mark.parametrize("overrides, errcode", [
    ({"secret": "wrong"}, 40125),
    ({"appid": "wx0000000000000bad"}, 40013),
    ({"grant_type": "authorization_code"}, 40002),
    ({"force_refresh": "yes"}, 47001),
])
@pytest.mark.gen_test
async def test_stable_token_errcodes(stable_token, overrides, errcode):
    assert (await stable_token(**overrides))["errcode"] == errcode


@pytest.mark.gen_test
async def test_stable_token_wants_a_json_body(call):
    status, headers, answer = await call("POST", "/cgi-bin/stable_token", raw=b"appid=x")
    assert status == 200 and answer["errcode"] == 47001


@pytest.mark.gen_test
async def test_cgi_bin_token_kills_the_previous_token(call):
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    first = (await call("GET", "/cgi-bin/token", **query))[2]["access_token"]
    second = (await call("GET", "/cgi-bin/token", **query))[2]["access_token"]
    assert (await call("GET", "/cgi-bin/menu/get", access_token=first))[2]["errcode"] == 40001
    assert (await call("GET", "/cgi-bin/menu/get", access_token=second))[2]["errcode"] == 46003
    query["secret"] = "wrong"
    assert (await call("GET", "/cgi-bin/token", **query))[2]["errcode"] == 40125


@pytest.mark.gen_test
async def test_tokens_expire_after_token_ttl(call, stable_token, sandbox):
    assert (await call("POST", "/_sandbox/control", {"token_ttl": 5}))[0] == 200
    token = await stable_token()
    assert token["expires_in"] == 5
    sandbox.advance(5)
    status, _, answer = await call("GET", "/cgi-bin/menu/get",
                                   access_token=token["access_token"])
    assert answer["errcode"] == 42001
    assert (await call("GET", "/cgi-bin/menu/get"))[2]["errcode"] == 41001


@pytest.mark.gen_test
async def test_stable_and_plain_tokens_are_independent(call, stable_token):
    # §8.2: stable tokens are isolated from /cgi-bin/token ones.
    stable = (await stable_token())["access_token"]
    await call("GET", "/cgi-bin/token", grant_type="client_credential", appid=APPID,
               secret=SECRET)
    assert (await call("GET", "/cgi-bin/menu/get", access_token=stable))[2]["errcode"] == 46003


# -- menus (§8.3) ------------------------------------------------------------------------


def leaf(**fields):
    return {"type": "click", "name": "成绩", "key": "grades", **fields}


def parent(*subs, name="更多"):
    return {"name": name, "sub_button": list(subs)}


VALID_MENU = {"button": [
    leaf(),
    {"type": "view", "name": "主页", "url": "https://app.test/wx/go/home"},
    parent(leaf(name="帮助", key="help"),
           {"type": "miniprogram", "name": "小程序", "url": "http://mp.weixin.qq.com",
            "appid": "wx286b93c14bbf93aa", "pagepath": "pages/lunar/index"}),
]}


@pytest.mark.parametrize("menu, errcode", [
    ({"button": []}, 40016),
    ({"button": [leaf()] * 4}, 40016),
    ({}, 40016),
    ({"button": [leaf(type="bogus")]}, 40017),
    ({"button": [leaf(name="六个汉字名字")]}, 40018),  # 18 bytes > 16
    ({"button": [leaf(name="")]}, 40018),
    ({"button": [leaf(key="k" * 129)]}, 40019),
    ({"button": [leaf(key=None)]}, 40019),
    ({"button": [{"type": "view", "name": "v", "url": "https://a.test/" + "x" * 1010}]}, 40020),
    ({"button": [{"type": "view", "name": "v", "url": "javascript:alert(1)"}]}, 40020),
    ({"button": [parent(*[leaf()] * 6)]}, 40023),
    ({"button": [parent(leaf(type="bogus"))]}, 40024),
    ({"button": [parent(leaf(name="名" * 21))]}, 40025),  # 63 bytes > 60
    ({"button": [parent(leaf(key="k" * 129))]}, 40026),
    ({"button": [parent({"type": "view", "name": "v", "url": "u" * 1025})]}, 40027),
    ({"button": [parent(leaf(), name="六个汉字名字")]}, 40018),
])
@pytest.mark.gen_test
async def test_menu_create_validation(call, stable_token, menu, errcode):
    token = (await stable_token())["access_token"]
    answer = (await call("POST", "/cgi-bin/menu/create", menu, access_token=token))[2]
    assert answer["errcode"] == errcode


@pytest.mark.gen_test
async def test_menu_limits_are_inclusive(call, stable_token):
    token = (await stable_token())["access_token"]
    menu = {"button": [leaf(name="五个汉字A", key="k" * 128),  # 16 bytes
                       parent(*[leaf(name="二十个汉字" * 4)] * 5),  # 60 bytes, 5 subs
                       {"type": "view", "name": "v", "url": "https://a.test/" + "x" * 1009}]}
    answer = (await call("POST", "/cgi-bin/menu/create", menu, access_token=token))[2]
    assert answer == {"errcode": 0, "errmsg": "ok"}


@pytest.mark.gen_test
async def test_menu_create_refuses_unicode_escapes(call, stable_token):
    token = (await stable_token())["access_token"]
    raw = json.dumps(VALID_MENU).encode()  # ensure_ascii: "\u6210\u7ee9"
    answer = (await call("POST", "/cgi-bin/menu/create", raw=raw, access_token=token))[2]
    assert answer["errcode"] == 40033
    answer = (await call("POST", "/cgi-bin/menu/create", raw=b"{not json",
                         access_token=token))[2]
    assert answer["errcode"] == 47001


@pytest.mark.gen_test
async def test_menu_create_then_get(call, stable_token, sandbox):
    token = (await stable_token())["access_token"]
    assert (await call("GET", "/cgi-bin/menu/get", access_token=token))[2]["errcode"] == 46003
    created = await call("POST", "/cgi-bin/menu/create", VALID_MENU, access_token=token)
    assert created[2]["errcode"] == 0
    assert sandbox.menu == VALID_MENU
    shown = (await call("GET", "/cgi-bin/menu/get", access_token=token))[2]["menu"]
    assert shown["button"][0] == {**leaf(), "sub_button": []}
    assert shown["button"][2]["sub_button"][0]["sub_button"] == []
    # WeChat's own menu/get output is accepted back by menu/create.
    again = await call("POST", "/cgi-bin/menu/create", shown, access_token=token)
    assert again[2]["errcode"] == 0
    await call("GET", "/cgi-bin/menu/delete", access_token=token)
    assert sandbox.menu is None


@pytest.mark.gen_test
async def test_menu_create_needs_a_current_token(call):
    assert (await call("POST", "/cgi-bin/menu/create", VALID_MENU,
                       access_token="bogus"))[2]["errcode"] == 40001


# -- customer-service messages (§8.4) ----------------------------------------------------


@pytest.mark.gen_test
async def test_custom_send_appears_in_the_followers_inbox(call, stable_token, http_client,
                                                          url, sandbox):
    token = (await stable_token())["access_token"]
    body = {"touser": BOB, "msgtype": "text", "text": {"content": "你的成绩已出 ✓"}}
    assert (await call("POST", "/cgi-bin/message/custom/send", body,
                       access_token=token))[2] == {"errcode": 0, "errmsg": "ok"}
    resp = await http_client.fetch(f"{url}/chat/inbox?since=0",
                                   headers={"Cookie": f"{FOLLOWER_COOKIE}={BOB}"})
    inbox = json.loads(resp.body)
    assert inbox["openid"] == BOB
    [entry] = inbox["entries"]
    assert entry["content"] == "你的成绩已出 ✓"
    assert entry["via"] == "custom" and entry["from"] == "account"
    later = await http_client.fetch(f"{url}/chat/inbox?since={entry['id']}",
                                    headers={"Cookie": f"{FOLLOWER_COOKIE}={BOB}"})
    assert json.loads(later.body)["entries"] == []
    assert sandbox.inbox(ALICE) == []


@pytest.mark.parametrize("body, errcode", [
    ({"touser": "oNobody", "msgtype": "text", "text": {"content": "x"}}, 40003),
    ({"touser": BOB, "msgtype": "image", "image": {"media_id": "m"}}, 40008),
    ({"touser": BOB, "msgtype": "text", "text": {"content": ""}}, 44004),
])
@pytest.mark.gen_test
async def test_custom_send_errcodes(call, stable_token, sandbox, body, errcode):
    token = (await stable_token())["access_token"]
    answer = (await call("POST", "/cgi-bin/message/custom/send", body, access_token=token))[2]
    assert answer["errcode"] == errcode
    assert sandbox.inbox(BOB) == []


@pytest.mark.gen_test
async def test_custom_send_to_an_unfollower_is_refused(call, stable_token, sandbox):
    sandbox.followers[BOB].subscribed = False
    token = (await stable_token())["access_token"]
    body = {"touser": BOB, "msgtype": "text", "text": {"content": "x"}}
    answer = (await call("POST", "/cgi-bin/message/custom/send", body, access_token=token))[2]
    assert answer["errcode"] == 45015


# -- faults, latency and the control API -------------------------------------------------


@pytest.mark.gen_test
async def test_an_injected_errcode_fails_only_count_calls(call, stable_token):
    fault = {"path": "/cgi-bin/stable_token", "errcode": 45009, "count": 2}
    assert (await call("POST", "/_sandbox/control", {"fail": fault}))[0] == 200
    assert (await stable_token())["errcode"] == 45009
    assert (await stable_token())["errcode"] == 45009
    assert "access_token" in await stable_token()


@pytest.mark.gen_test
async def test_an_injected_html_page(call, stable_token):
    await call("POST", "/_sandbox/control",
               {"fail": {"path": "/cgi-bin/stable_token", "html": True}})
    status, headers, answer = await call("POST", "/cgi-bin/stable_token", {})
    assert status == 502
    assert headers["Content-Type"].startswith("text/html") and answer is None
    assert "access_token" in await stable_token()


@pytest.mark.gen_test
async def test_an_injected_drop_closes_the_connection(http_client, url, sandbox):
    sandbox.fail("/sns/auth", drop=True)
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await http_client.fetch(f"{url}/sns/auth?access_token=x&openid=y")
    assert caught.value.code == 599  # no response at all
    assert (await http_client.fetch(f"{url}/sns/auth?access_token=x&openid=y")).code == 200


@pytest.mark.gen_test
async def test_count_zero_fails_until_reset(call, sandbox):
    sandbox.fail("/sns/auth", errcode=-1, count=0)
    for _ in range(3):
        assert (await call("GET", "/sns/auth"))[2]["errcode"] == -1
    assert (await call("POST", "/_sandbox/reset", {}))[0] == 200
    assert (await call("GET", "/sns/auth"))[2]["errcode"] == 41001


@pytest.mark.gen_test
async def test_latency_delays_every_api_call(call, sandbox):
    await call("POST", "/_sandbox/control", {"latency": 0.2})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await call("GET", "/sns/auth")
    assert loop.time() - started >= 0.2
    started = loop.time()
    await call("GET", "/_sandbox/calls")  # the control API is never delayed
    assert loop.time() - started < 0.2
    assert sandbox.latency == 0.2


@pytest.mark.gen_test
async def test_calls_are_counted_per_path_and_reset(call):
    await call("GET", "/sns/auth")
    await call("GET", "/sns/auth")
    await call("GET", "/cgi-bin/menu/get")
    assert (await call("GET", "/_sandbox/calls"))[2] == {"/sns/auth": 2, "/cgi-bin/menu/get": 1}
    await call("POST", "/_sandbox/reset", {})
    assert (await call("GET", "/_sandbox/calls"))[2] == {}


@pytest.mark.gen_test
async def test_control_mints_codes_for_followers_it_adds(call, sandbox):
    status, _, added = await call("POST", "/_sandbox/followers",
                                  {"openid": "oBench0001", "nickname": "压测 Bench"})
    assert status == 201 and added["subscribed"] is True
    codes = set()
    for _ in range(20):
        status, _, minted = await call("POST", "/_sandbox/codes",
                                       {"openid": "oBench0001", "scope": "snsapi_userinfo"})
        codes.add(minted["code"])
    assert len(codes) == 20
    answer = (await call("GET", "/sns/oauth2/access_token", appid=APPID, secret=SECRET,
                         code=codes.pop(), grant_type="authorization_code"))[2]
    assert answer["openid"] == "oBench0001" and answer["scope"] == "snsapi_userinfo"
    assert (await call("POST", "/_sandbox/codes", {"openid": "oNobody"}))[0] == 404
    assert (await call("POST", "/_sandbox/codes", {"scope": "snsapi_bogus"}))[0] == 400
    assert (await call("POST", "/_sandbox/followers", {"openid": "bad id!"}))[0] == 400


@pytest.mark.parametrize("body", [
    {"latency": "fast"},
    {"fail": {"path": "/sns/auth"}},
    {"fail": {"path": "sns/auth", "errcode": 1}},
    {"fail": {"path": "/sns/auth", "errcode": 1, "colour": "red"}},
])
@pytest.mark.gen_test
async def test_a_bad_control_body_is_a_400(call, sandbox, body):
    assert (await call("POST", "/_sandbox/control", body))[0] == 400
    assert sandbox.faults == [] and sandbox.latency == 0


@pytest.mark.gen_test
async def test_control_wants_json(call, sandbox):
    status, _, _ = await call("POST", "/_sandbox/control", raw=b"latency=5",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert sandbox.latency == 0


@pytest.mark.gen_test
async def test_the_sandbox_log_never_shows_query_strings(call, caplog):
    caplog.set_level(logging.DEBUG)
    await call("GET", "/sns/oauth2/access_token", appid=APPID, secret=SECRET,
               code="c0de5ecret", grant_type="authorization_code")
    assert "/sns/oauth2/access_token" in caplog.text
    assert SECRET not in caplog.text and "c0de5ecret" not in caplog.text


# -- start_sandbox -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_start_sandbox_binds_a_free_port_and_stop_closes_it():
    sandbox = Sandbox(APPID, SECRET, "token")
    server, port = await start_sandbox(sandbox)
    client = tornado.httpclient.AsyncHTTPClient()
    try:
        assert port > 0
        assert sandbox.base_url == f"http://127.0.0.1:{port}"
        resp = await client.fetch(f"http://127.0.0.1:{port}/_sandbox/calls")
        assert json.loads(resp.body) == {}
    finally:
        await stop_sandbox(server)
    with pytest.raises(ConnectionRefusedError):
        await client.fetch(f"http://127.0.0.1:{port}/_sandbox/calls")
