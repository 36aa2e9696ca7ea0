"""The global access_token service: one stable_token fetch for many callers and processes, retry on a dead token."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

import wxmsg
from conftest import ADMIN_PASSWORD, AdminClient, Browser, make_env
from server.store import Store, make_client
from server.tokens import TokenService
from server.wechat.client import WeChatClient, WeChatError, WeChatUnavailable

STABLE = "/cgi-bin/stable_token"


class Process:
    """What one server process has for tokens: its own MongoDB client, HTTP session and TokenService."""

    def __init__(self, config, mongo_uri, **options):
        self.client = make_client(mongo_uri)
        self.store = Store(self.client, config.db_name)
        self.session = aiohttp.ClientSession()
        self.wechat = WeChatClient(self.session, config.api_base, config.appid, config.appsecret, timeout=3.0)
        self.tokens = TokenService(self.store, self.wechat, config.appid, **options)

    async def close(self):
        await self.session.close()
        await self.client.close()


@pytest.fixture
def processes(io_loop, config, mongo_uri, sandbox):
    made: list[Process] = []

    def make(**options) -> Process:
        proc = Process(config, mongo_uri, **options)
        made.append(proc)
        return proc

    yield make

    async def close():
        for proc in made:
            await proc.close()
    io_loop.run_sync(close)


# ---- one fetch -----------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_concurrent_callers_in_two_processes_fetch_once(processes, sandbox):
    sandbox.latency = 0.3  # a slow WeChat widens the window in which both would fetch
    a, b = processes(), processes()
    tokens = await asyncio.gather(*[p.tokens.token() for p in (a, b, a, b, a, b)])
    assert len(set(tokens)) == 1
    assert sandbox.calls[STABLE] == 1


@pytest.mark.gen_test
async def test_token_is_reused_from_memory_and_from_mongodb(processes, sandbox):
    first = processes()
    token = await first.tokens.token()
    assert await first.tokens.token() == token
    # A process started later finds the token in MongoDB.
    later = processes()
    assert await later.tokens.token() == token
    assert sandbox.calls[STABLE] == 1
    doc = await first.store.cached_token(sandbox.appid)
    assert doc["token"] == token and doc["expires_at"] == pytest.approx(time.time() + 7200, abs=30)
    assert doc["lease_until"] == 0.0  # storing the token ends the lease


@pytest.mark.gen_test
async def test_token_is_refreshed_ahead_of_expiry(processes, sandbox, fake_clock):
    proc = processes(clock=fake_clock)
    old = await proc.tokens.token()
    fake_clock.advance(7200 - 400)  # 6 min 40 s left: still fresh
    sandbox.advance(7200 - 400)
    assert await proc.tokens.token() == old
    fake_clock.advance(120)  # 4 min 40 s left: inside the 5-minute window (docs/wechat-protocol.md §8.2)
    sandbox.advance(120)
    new = await proc.tokens.token()
    assert new != old and sandbox.calls[STABLE] == 2


@pytest.mark.gen_test
async def test_while_another_process_refreshes_a_working_token_is_used(processes, sandbox, fake_clock):
    a = processes(clock=fake_clock)
    old = await a.tokens.token()
    fake_clock.advance(7200 - 200)
    # Another process holds the lease (it is fetching right now).
    assert await a.store.take_token_lease(sandbox.appid, "other", 10)
    b = processes(clock=fake_clock)
    assert await b.tokens.token() == old
    assert sandbox.calls[STABLE] == 1


@pytest.mark.gen_test
async def test_lease_of_a_dead_process_runs_out(processes, sandbox):
    proc = processes(wait_seconds=5)
    assert await proc.store.take_token_lease(sandbox.appid, "crashed", 0.3)
    started = time.monotonic()
    assert await proc.tokens.token()
    assert 0.25 < time.monotonic() - started < 3
    assert sandbox.calls[STABLE] == 1


@pytest.mark.gen_test
async def test_waiting_for_a_stuck_refresh_gives_up(processes, sandbox):
    proc = processes(wait_seconds=0.3)
    assert await proc.store.take_token_lease(sandbox.appid, "stuck", 60)
    with pytest.raises(WeChatUnavailable) as info:
        await proc.tokens.token()
    assert info.value.reason == "timeout"
    assert sandbox.calls[STABLE] == 0


@pytest.mark.gen_test
async def test_failed_refresh_releases_the_lease(processes, sandbox):
    proc = processes()
    sandbox.fail(STABLE, errcode=-1)
    with pytest.raises(WeChatError):
        await proc.tokens.token()
    # Nobody has to wait out the lease: the next caller fetches at once.
    assert (await proc.store.cached_token(sandbox.appid))["lease_until"] == 0.0
    assert await proc.tokens.token()
    assert sandbox.calls[STABLE] == 2


@pytest.mark.gen_test
async def test_failed_refresh_ahead_keeps_the_working_token(processes, sandbox, fake_clock):
    proc = processes(clock=fake_clock)
    old = await proc.tokens.token()
    fake_clock.advance(7200 - 200)
    sandbox.fail(STABLE, drop=True, count=2)
    assert await proc.tokens.token() == old


@pytest.mark.gen_test
async def test_wrong_secret_is_not_retried(processes, sandbox):
    sandbox.secret = "another" + sandbox.secret[7:]
    proc = processes()
    with pytest.raises(WeChatError) as info:
        await proc.tokens.call(proc.wechat.menu_get)
    assert info.value.errcode == 40125
    assert sandbox.calls[STABLE] == 1


# ---- call(): retry once with a fresh token --------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_call_refreshes_a_refused_token_and_retries_once(processes, sandbox, errcode):
    proc = processes()
    await proc.tokens.token()
    sandbox.fail("/cgi-bin/menu/get", errcode=errcode)
    sandbox.menu = {"button": [{"type": "click", "name": "x", "key": "k"}]}
    answer = await proc.tokens.call(proc.wechat.menu_get)
    assert answer["menu"]["button"][0]["key"] == "k"
    assert sandbox.calls["/cgi-bin/menu/get"] == 2 and sandbox.calls[STABLE] == 2


@pytest.mark.gen_test
async def test_call_retries_only_once(processes, sandbox):
    proc = processes()
    sandbox.fail("/cgi-bin/menu/get", errcode=40001, count=0)
    with pytest.raises(WeChatError) as info:
        await proc.tokens.call(proc.wechat.menu_get)
    assert info.value.errcode == 40001 and sandbox.calls["/cgi-bin/menu/get"] == 2


@pytest.mark.gen_test
@pytest.mark.parametrize("errcode", [45009, 48001, -1, 46003])
async def test_other_errors_are_not_retried(processes, sandbox, errcode):
    proc = processes()
    sandbox.fail("/cgi-bin/menu/get", errcode=errcode)
    with pytest.raises(WeChatError):
        await proc.tokens.call(proc.wechat.menu_get)
    assert sandbox.calls["/cgi-bin/menu/get"] == 1 and sandbox.calls[STABLE] == 1


@pytest.mark.gen_test
async def test_a_newer_token_from_another_process_is_not_thrown_away(processes, sandbox):
    """Process A still holds T1 in memory; process B has already replaced it with T2 in MongoDB.
    A's failure with T1 must not expire T2 (DESIGN.md: expire only the token that failed)."""
    a, b = processes(), processes()
    t1 = await a.tokens.token()
    t2 = sandbox.issue_global_token("stable", force=True).value  # T1 is now "not latest" (40001)
    await b.store.store_token(sandbox.appid, t2, time.time() + 7200)
    sandbox.menu = {"button": [{"type": "click", "name": "x", "key": "k"}]}
    await a.tokens.call(a.wechat.menu_get)
    assert t1 != t2
    doc = await b.store.cached_token(sandbox.appid)
    assert doc["token"] == t2 and doc["expires_at"] > time.time() + 7000
    assert sandbox.calls[STABLE] == 1  # no fetch: A re-read T2 from MongoDB


@pytest.mark.gen_test
async def test_token_never_reaches_the_log(processes, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    proc = processes()
    sandbox.fail("/cgi-bin/menu/get", errcode=42001)
    sandbox.menu = {"button": [{"type": "click", "name": "x", "key": "k"}]}
    await proc.tokens.call(proc.wechat.menu_get)
    token = await proc.tokens.token()
    # Our loggers and Tornado's; pymongo's DEBUG command log is kept at WARNING by serve.configure_logging.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("wxauth", "tornado")))
    assert "fetched a new access_token" in ours and "retrying once" in ours
    assert token not in ours and sandbox.secret not in ours


# ---- two real server processes ----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=90)
async def test_two_server_processes_share_one_token_and_one_state_map(sandbox, server_processes, wechat_port, db_name,
                                                                       mongo_uri, config):
    """Two `python -m server` processes on one store publish at the same moment: one stable_token call.
    A map change made through one process's admin reaches the other's replies within 5 s."""
    from server.embedded import free_port

    ports = [free_port(), free_port()]
    servers = [server_processes(make_env(port, wechat_port, db_name, MONGODB_URI=mongo_uri, WX_ADMIN_PASSWORD=ADMIN_PASSWORD),
                                port=port) for port in ports]
    for server in servers:
        await server.wait_ready_async()
    sandbox.latency = 0.3  # both requests reach the token service while the first fetch is under way
    admins = []
    for server in servers:
        browser = Browser()
        admins.append(AdminClient(browser, server.url))
    try:
        for admin in admins:
            assert (await admin.login()).status == 303
        menu = '{"button": [{"type": "click", "name": "成绩", "key": "score"}]}'
        saved = await admins[0].post("/admin/menu", {"source": "json", "action": "save", "menu_json": menu})
        assert saved.status == 303
        assert sandbox.calls[STABLE] == 0
        published = await asyncio.gather(*[admin.post("/admin/menu/publish") for admin in admins])
        assert [r.status for r in published] == [303, 303], [s.log[-2000:] for s in servers]
        assert sandbox.calls[STABLE] == 1
        assert sandbox.calls["/cgi-bin/menu/create"] == 2
        assert sandbox.menu == {"button": [{"type": "click", "name": "成绩", "key": "score"}]}

        # The map: written through process 0, answered by process 1.
        sandbox.latency = 0.0
        added = await admins[0].post("/admin/states", {"key": "score", "page": "/wx/page/bind", "title": "查成绩",
                                                       "keywords": "成绩", "scope": "snsapi_base"})
        assert added.status == 303
        started = time.monotonic()
        msg_id = 9000
        while True:
            msg_id += 1
            reply = await admins[1].browser.post(f"{servers[1].url}/wx?{wxmsg.query()}",
                                                 data=wxmsg.text("成绩", msg_id=msg_id).encode())
            if f"{servers[1].url}/wx/go/score" in reply.text_body:
                break
            assert time.monotonic() - started < 5, "the change did not reach the other process within 5 s"
            await asyncio.sleep(0.1)
    finally:
        for admin in admins:
            await admin.browser.close()
    for server in servers:
        assert sandbox.secret not in server.log
