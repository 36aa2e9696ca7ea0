"""WeChatClient against the sandbox on a real port: answers, errcodes, timeouts, retry, logs."""

import asyncio
import logging
import socket

import aiohttp
import pytest
import tornado.testing

from server.sandbox import Sandbox, make_sandbox_app
from server.wechat.client import WeChatClient, WeChatError, WeChatUnavailable
from conftest import APPID, SECRET, TOKEN
from server.sandbox.state import ALICE  # the stand-in's demo followers


@pytest.fixture
def sandbox():
    return Sandbox(APPID, SECRET, TOKEN)


@pytest.fixture
def app(sandbox):
    return make_sandbox_app(sandbox)


@pytest.fixture
def api_base(http_server, http_port):
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def session(io_loop):
    async def make():
        return aiohttp.ClientSession()

    session = io_loop.run_sync(make)
    yield session
    io_loop.run_sync(session.close)


@pytest.fixture
def calls():
    """What the client reported through on_call, as (endpoint, outcome)."""
    return []


def make_client(session, api_base, calls, *, appid=APPID, secret=SECRET, timeout=2.0):
    return WeChatClient(session, api_base, appid, secret, timeout=timeout,
                        on_call=lambda endpoint, outcome, seconds: calls.append((endpoint, outcome)))


@pytest.fixture
def client(session, api_base, calls):
    return make_client(session, api_base, calls)


# -- success paths -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_exchange_code_returns_openid_and_tokens(client, sandbox, calls):
    answer = await client.exchange_code(sandbox.mint_code(ALICE, "snsapi_base"))
    assert answer["openid"] == ALICE
    assert answer["scope"] == "snsapi_base"
    assert answer["access_token"] and answer["refresh_token"]
    assert "unionid" not in answer
    assert calls == [("/sns/oauth2/access_token", "ok")]


@pytest.mark.gen_test
async def test_userinfo_after_userinfo_scope(client, sandbox):
    answer = await client.exchange_code(sandbox.mint_code(ALICE, "snsapi_userinfo"))
    profile = await client.userinfo(answer["access_token"], answer["openid"])
    assert profile["nickname"] == "Alice 小明"
    assert profile["unionid"] == answer["unionid"]


@pytest.mark.gen_test
async def test_refresh_web_token_gives_a_new_access_token(client, sandbox):
    answer = await client.exchange_code(sandbox.mint_code(ALICE, "snsapi_userinfo"))
    refreshed = await client.refresh_web_token(answer["refresh_token"])
    assert refreshed["openid"] == ALICE
    assert refreshed["access_token"] != answer["access_token"]
    assert await client.check_web_token(refreshed["access_token"], ALICE)


@pytest.mark.gen_test
async def test_check_web_token_is_false_for_bad_expired_or_foreign_tokens(client, sandbox):
    answer = await client.exchange_code(sandbox.mint_code(ALICE))
    assert await client.check_web_token(answer["access_token"], ALICE) is True
    assert await client.check_web_token(answer["access_token"], "oSomeoneElse") is False
    assert await client.check_web_token("not-a-token", ALICE) is False
    sandbox.advance(sandbox.token_ttl)
    assert await client.check_web_token(answer["access_token"], ALICE) is False


@pytest.mark.gen_test
async def test_check_web_token_raises_when_wechat_is_busy(client, sandbox):
    answer = await client.exchange_code(sandbox.mint_code(ALICE))
    sandbox.fail("/sns/auth", errcode=-1)
    with pytest.raises(WeChatError) as caught:
        await client.check_web_token(answer["access_token"], ALICE)
    assert caught.value.errcode == -1


@pytest.mark.gen_test
async def test_stable_token_is_stable_unless_forced(client):
    first = await client.stable_token()
    assert first["expires_in"] > 0
    assert (await client.stable_token())["access_token"] == first["access_token"]
    forced = await client.stable_token(force_refresh=True)
    assert forced["access_token"] != first["access_token"]


@pytest.mark.gen_test
async def test_menu_create_sends_raw_utf8_and_menu_get_reads_it(client, sandbox):
    # The sandbox answers 40033 to \\uXXXX escapes, as WeChat does, so this fails if the
    # client sends ensure_ascii JSON.
    access_token = (await client.stable_token())["access_token"]
    menu = {"button": [{"type": "click", "name": "成绩", "key": "grades"}]}
    assert await client.menu_create(access_token, menu) is None
    shown = await client.menu_get(access_token)
    assert shown["menu"]["button"][0]["name"] == "成绩"
    assert sandbox.menu == menu


# -- WeChat errcodes ---------------------------------------------------------------------


async def _unknown_code(client, sandbox):
    await client.exchange_code("0" * 32)


async def _used_code(client, sandbox):
    code = sandbox.mint_code(ALICE)
    await client.exchange_code(code)
    sandbox.calls.clear()
    await client.exchange_code(code)


async def _expired_code(client, sandbox):
    code = sandbox.mint_code(ALICE)
    sandbox.advance(300)
    await client.exchange_code(code)


async def _wrong_appid(client, sandbox):
    await client.exchange_code(sandbox.mint_code(ALICE))


async def _system_busy(client, sandbox):
    sandbox.fail("/sns/oauth2/access_token", errcode=-1)
    await client.exchange_code(sandbox.mint_code(ALICE))


async def _userinfo_with_base_scope(client, sandbox):
    answer = await client.exchange_code(sandbox.mint_code(ALICE, "snsapi_base"))
    sandbox.calls.clear()
    await client.userinfo(answer["access_token"], ALICE)


@pytest.mark.parametrize("errcode, provoke, endpoint, credentials", [
    (40029, _unknown_code, "/sns/oauth2/access_token", {}),
    (40163, _used_code, "/sns/oauth2/access_token", {}),
    (42003, _expired_code, "/sns/oauth2/access_token", {}),
    (40013, _wrong_appid, "/sns/oauth2/access_token", {"appid": "wx0000000000000bad"}),
    (40125, _wrong_appid, "/sns/oauth2/access_token", {"secret": "wrong-secret"}),
    (-1, _system_busy, "/sns/oauth2/access_token", {}),
    (48001, _userinfo_with_base_scope, "/sns/userinfo", {}),
])
@pytest.mark.gen_test
async def test_errcode_raises_wechat_error_without_retry(
        errcode, provoke, endpoint, credentials, session, api_base, sandbox):
    calls = []
    client = make_client(session, api_base, calls, **credentials)
    with pytest.raises(WeChatError) as caught:
        await provoke(client, sandbox)
    assert caught.value.errcode == errcode
    assert caught.value.endpoint == endpoint
    assert calls[-1] == (endpoint, f"errcode:{errcode}")
    assert sandbox.calls[endpoint] == 1  # an errcode is an answer: never retried


# -- WeChat unavailable ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_latency_beyond_the_budget_is_unavailable_within_the_budget(
        session, api_base, sandbox):
    calls = []
    client = make_client(session, api_base, calls, timeout=0.3)
    sandbox.latency = 2.0
    started = asyncio.get_running_loop().time()
    with pytest.raises(WeChatUnavailable) as caught:
        await client.exchange_code(sandbox.mint_code(ALICE))
    elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.reason == "timeout"
    assert 0.3 <= elapsed < 0.6
    assert calls == [("/sns/oauth2/access_token", "timeout")]
    sandbox.latency = 0
    await sandbox.idle()  # let the slow handler finish before the server stops
    assert sandbox.calls["/sns/oauth2/access_token"] == 1  # a timeout is never retried


@pytest.mark.gen_test
async def test_retry_after_a_drop_shares_the_one_budget(session, api_base, sandbox):
    # First attempt: dropped after 0.2 s. The retry has only the remaining 0.2 s of the
    # 0.4 s budget, and the sandbox takes 1 s: the call must end at 0.4 s, not 1.2 s.
    client = make_client(session, api_base, [], timeout=0.4)
    sandbox.fail("/cgi-bin/stable_token", drop=True, delay=0.2)
    sandbox.fail("/cgi-bin/stable_token", delay=1.0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(WeChatUnavailable) as caught:
        await client.stable_token()
    elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.reason == "timeout"
    assert 0.4 <= elapsed < 0.6
    await sandbox.idle()
    assert sandbox.calls["/cgi-bin/stable_token"] == 2


@pytest.mark.gen_test
async def test_html_error_page_is_unavailable(client, sandbox, calls):
    sandbox.fail("/sns/oauth2/access_token", html=True)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.exchange_code(sandbox.mint_code(ALICE))
    assert caught.value.reason == "bad_response"
    assert calls == [("/sns/oauth2/access_token", "bad_response")]
    assert sandbox.calls["/sns/oauth2/access_token"] == 1


@pytest.mark.gen_test
async def test_html_with_status_200_is_unavailable_too(client, sandbox):
    sandbox.fail("/cgi-bin/stable_token", html=True, status=200)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.stable_token()
    assert caught.value.reason == "bad_response"


@pytest.mark.gen_test
async def test_connection_refused_is_unavailable(session, calls):
    sock, port = tornado.testing.bind_unused_port()
    sock.close()  # nothing listens there any more
    client = make_client(session, f"http://127.0.0.1:{port}", calls)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.stable_token()
    assert caught.value.reason == "network"
    assert calls == [("/cgi-bin/stable_token", "network")]


@pytest.mark.gen_test
async def test_a_dropped_connection_is_retried_once(client, sandbox, calls):
    sandbox.fail("/sns/oauth2/access_token", drop=True)
    answer = await client.exchange_code(sandbox.mint_code(ALICE))
    assert answer["openid"] == ALICE
    assert sandbox.calls["/sns/oauth2/access_token"] == 2
    assert calls == [("/sns/oauth2/access_token", "ok")]


@pytest.mark.gen_test
async def test_gives_up_after_two_dropped_connections(client, sandbox, calls):
    # Also pins that aiohttp's own hidden GET retry is off: with it, this would be 3 or 4.
    sandbox.fail("/sns/oauth2/access_token", drop=True, count=3)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.exchange_code(sandbox.mint_code(ALICE))
    assert caught.value.reason == "network"
    assert sandbox.calls["/sns/oauth2/access_token"] == 2
    assert calls == [("/sns/oauth2/access_token", "network")]


@pytest.mark.gen_test
async def test_a_post_that_may_have_arrived_is_not_resent(client, sandbox):
    # A forced stable_token refresh that may have arrived is not sent again: it could burn two
    # of its 20 daily uses (docs/wechat-protocol.md §8.2).
    sandbox.fail("/cgi-bin/stable_token", drop=True)
    with pytest.raises(WeChatUnavailable):
        await client.stable_token(force_refresh=True)
    assert sandbox.calls["/cgi-bin/stable_token"] == 1


@pytest.mark.gen_test
async def test_first_connection_dropped_by_a_tiny_server_then_answered():
    """A raw socket server that closes the first connection unanswered, then answers."""
    connections = []

    async def serve(reader, writer):
        connections.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if len(connections) > 1:
            body = b'{"access_token":"T","expires_in":7200}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            answer = await make_client(session, f"http://127.0.0.1:{port}", []).stable_token()
        assert answer["access_token"] == "T"
        assert len(connections) == 2
    finally:
        server.close()
        await server.wait_closed()


# -- logging -----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_logs_never_show_the_secret_the_code_or_tokens(
        session, api_base, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(session, api_base, [], timeout=0.3)
    code = sandbox.mint_code(ALICE, "snsapi_userinfo")
    answer = await client.exchange_code(code)
    profile_token = answer["access_token"]
    await client.userinfo(profile_token, ALICE)
    errors = []
    with pytest.raises(WeChatError) as caught:
        await client.exchange_code(code)  # 40163
    errors.append(caught.value)
    sandbox.fail("/sns/oauth2/access_token", drop=True, count=2)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.exchange_code(code)
    errors.append(caught.value)
    sandbox.fail("/sns/oauth2/access_token", delay=1.0)
    with pytest.raises(WeChatUnavailable) as caught:
        await client.exchange_code(code)
    errors.append(caught.value)
    await sandbox.idle()

    assert "/sns/oauth2/access_token" in caplog.text  # the endpoint is logged...
    assert "40163" in caplog.text  # ...with its errcode
    for secret in (SECRET, code, profile_token, answer["refresh_token"]):
        assert secret not in caplog.text
        assert all(secret not in str(error) for error in errors)


def test_a_closed_port_really_refuses():
    """Guards test_connection_refused_is_unavailable: the port it uses must refuse."""
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
