"""JS-SDK: one jsapi_ticket for many processes, /wx/jsconfig signs only our pages, business pages carry a share card."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import re
import time
from urllib.parse import quote

import aiohttp
import pytest

from conftest import Browser
from server.store import Store, make_client
from server.tickets import TicketService
from server.tokens import TokenService
from server.wechat.client import WeChatClient, WeChatError
from server.sandbox.state import ALICE  # the stand-in's demo followers

GETTICKET = "/cgi-bin/ticket/getticket"
STABLE = "/cgi-bin/stable_token"
PARTNER = "partner.example"


class Process:
    """What one server process has for the JS-SDK: its own MongoDB client, HTTP session, token and ticket services."""

    def __init__(self, config, mongo_uri):
        self.client = make_client(mongo_uri)
        self.store = Store(self.client, config.db_name)
        self.session = aiohttp.ClientSession()
        self.wechat = WeChatClient(self.session, config.api_base, config.appid, config.appsecret, timeout=3.0)
        self.tokens = TokenService(self.store, self.wechat, config.appid)
        self.tickets = TicketService(self.store, self.wechat, self.tokens, config.appid)

    async def close(self):
        await self.session.close()
        await self.client.close()


@pytest.fixture
def processes(io_loop, config, mongo_uri, sandbox):
    made: list[Process] = []

    def make() -> Process:
        made.append(Process(config, mongo_uri))
        return made[-1]

    yield make

    async def close():
        for proc in made:
            await proc.close()
    io_loop.run_sync(close)


def stand_in_tickets(sandbox) -> list[str]:
    return [t.value for t in sandbox.tokens.values() if t.kind == "jsapi"]


def string1_signature(ticket: str, nonce: str, timestamp, url: str) -> str:
    """docs/wechat-protocol.md §9, written out again here rather than calling the code under test."""
    return hashlib.sha1(f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}".encode()).hexdigest()


# ---- the ticket --------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_two_processes_fetch_the_ticket_once(processes, sandbox):
    sandbox.latency = 0.3  # a slow WeChat widens the window in which both would fetch
    a, b = processes(), processes()
    tickets = await asyncio.gather(*[p.tickets.ticket() for p in (a, b, a, b, a, b)])
    assert len(set(tickets)) == 1 and tickets[0] in stand_in_tickets(sandbox), dict(sandbox.calls)
    assert sandbox.calls[GETTICKET] == 1 and sandbox.calls[STABLE] == 1
    # Cached beside the access_token, under its own key and with its expiry; a later process reads it.
    doc = await a.store.cached_token(f"{sandbox.appid}:jsapi")
    assert doc["token"] == tickets[0] and doc["expires_at"] == pytest.approx(time.time() + 7200, abs=30)
    assert doc["lease_until"] == 0.0
    assert await processes().tickets.ticket() == tickets[0]
    assert sandbox.calls[GETTICKET] == 1


@pytest.mark.gen_test
async def test_a_refused_access_token_is_renewed_and_the_ticket_fetched_again(processes, sandbox):
    proc = processes()
    await proc.tokens.token()
    sandbox.fail(GETTICKET, errcode=40001)  # §15.2: a token another caller rotated
    assert await proc.tickets.ticket() in stand_in_tickets(sandbox)
    assert sandbox.calls[GETTICKET] == 2


@pytest.mark.gen_test
async def test_a_failed_ticket_fetch_releases_the_lease(processes, sandbox):
    proc = processes()
    sandbox.fail(GETTICKET, errcode=-1)
    with pytest.raises(WeChatError):
        await proc.tickets.ticket()
    assert (await proc.store.cached_token(f"{sandbox.appid}:jsapi"))["lease_until"] == 0.0
    assert await proc.tickets.ticket()
    assert sandbox.calls[GETTICKET] == 2


@pytest.mark.gen_test
async def test_the_stand_in_wants_a_global_token_and_type_jsapi(processes, sandbox):
    proc = processes()
    with pytest.raises(WeChatError) as info:
        await proc.wechat.jsapi_ticket("not-a-token")
    assert info.value.errcode == 40001
    async with proc.session.get(f"{sandbox.base_url}{GETTICKET}",
                                params={"access_token": await proc.tokens.token(), "type": "nonsense"}) as resp:
        assert (await resp.json())["errcode"] == 40097


# ---- /wx/jsconfig --------------------------------------------------------------------------------------

async def jsconfig(browser: Browser, app_url: str, url: str | None):
    query = "" if url is None else "?url=" + quote(url, safe="")
    return await browser.get(f"{app_url}/wx/jsconfig{query}")


@pytest.mark.gen_test
async def test_jsconfig_signs_a_page_of_this_site_without_its_fragment(app_url, services, sandbox, browser, caplog):
    caplog.set_level(logging.DEBUG)
    page = f"{app_url}/wx/page/grades?term=2025-2026-1&x=a|b"
    resp = await jsconfig(browser, app_url, page + "#/route?y=1")
    assert resp.status == 200, resp.text_body
    assert resp.headers["Cache-Control"] == "no-store"
    config = json.loads(resp.text_body)
    assert set(config) >= {"appId", "timestamp", "nonceStr", "signature"}
    assert config["appId"] == sandbox.appid and config["url"] == page
    assert isinstance(config["timestamp"], int) and abs(config["timestamp"] - time.time()) < 30
    assert re.fullmatch(r"[A-Za-z0-9]{16}", config["nonceStr"])
    # The raw URL (§15.1: not percent-encoded) with the stand-in's own ticket.
    (ticket,) = stand_in_tickets(sandbox)
    assert config["signature"] == string1_signature(ticket, config["nonceStr"], config["timestamp"], page)
    assert sandbox.check_js_config(config["appId"], page, str(config["timestamp"]), config["nonceStr"],
                                   config["signature"]) == "config:ok"
    # A second page reuses the ticket; each answer has its own nonce.
    again = json.loads((await jsconfig(browser, app_url, page)).text_body)
    assert again["nonceStr"] != config["nonceStr"] and sandbox.calls[GETTICKET] == 1
    # Our loggers and Tornado's (pymongo's DEBUG command log is kept at WARNING by serve.configure_logging).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("wxauth", "tornado")))
    assert "fetched a new jsapi_ticket" in ours and ticket not in ours


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_ALLOWED_HOSTS": PARTNER}])
async def test_jsconfig_signs_a_page_on_an_allowed_host(app_url, services, sandbox, browser):
    resp = await jsconfig(browser, app_url, f"https://{PARTNER}/share?id=1")
    assert resp.status == 200 and json.loads(resp.text_body)["url"] == f"https://{PARTNER}/share?id=1"


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_ALLOWED_HOSTS": PARTNER}])
@pytest.mark.parametrize("hostile", [
    "https://evil.example/",
    "//evil.example",
    "//evil.example/wx/page/grades",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/wx/page/grades",                              # a path is not what location.href holds
    "{app}@evil.example/",                          # userinfo: the host is evil.example
    "http://user@{host}/wx/page/grades",            # userinfo on our own host is refused too
    "https://partner.example.evil.example/",        # an allowed host's lookalikes
    "https://evilpartner.example/",
    "https://partner.example%2eevil.example/",
    "http://{hostname}:1/wx/page/grades",           # our host name, another port
    "https://{host}/wx/page/grades",                # our host, another scheme
    "{app}\\@evil.example/",
    "{app}%5C@evil.example/",
    "http://evil.example\\{host}/",
    "{app}/wx/page/\r\nSet-Cookie: a=b",
    "{app}/" + "a" * 1100,
])
async def test_jsconfig_refuses_urls_of_other_sites(app_url, services, sandbox, browser, hostile):
    host = app_url.split("//", 1)[1]
    url = hostile.format(app=app_url, host=host, hostname=host.split(":")[0])
    resp = await jsconfig(browser, app_url, url)
    assert resp.status == 400, url
    assert resp.headers["Content-Type"].startswith("application/json")
    assert json.loads(resp.text_body)["error"].startswith("url: ")
    assert "signature" not in resp.text_body
    assert sandbox.calls[GETTICKET] == 0  # refused before WeChat is asked


@pytest.mark.gen_test
@pytest.mark.parametrize("url", [None, ""])
async def test_jsconfig_refuses_a_missing_url(app_url, services, sandbox, browser, url):
    resp = await jsconfig(browser, app_url, url)
    assert resp.status == 400 and "url: missing" in json.loads(resp.text_body)["error"]


@pytest.mark.gen_test
async def test_jsconfig_says_so_when_wechat_hands_out_no_ticket(app_url, services, sandbox, browser):
    sandbox.fail(GETTICKET, html=True)
    resp = await jsconfig(browser, app_url, f"{app_url}/wx/page/grades")
    assert resp.status == 502 and resp.headers["Cache-Control"] == "no-store"
    assert "jsapi_ticket" in json.loads(resp.text_body)["error"]


# ---- the share card on business pages --------------------------------------------------------------------

HOSTILE_TITLE = '查成绩 "><script>alert(1)</script>'


@pytest.fixture
def entries(io_loop, services):
    async def put():
        await services.store.db.grades.insert_one({"student_no": "2023001", "term": "t", "course": "c",
                                                   "credit": 1, "score": 90})
        for key, page, title in (("score", "/wx/page/grades", HOSTILE_TITLE), ("me", "/wx/page/me", "我的资料")):
            await services.state_entries.put({"key": key, "page": page, "title": title, "keywords": [],
                                              "scope": "snsapi_base"}, by="test")
    io_loop.run_sync(put)
    return services


async def signed_in_grades(browser: Browser, app_url: str):
    browser.session.cookie_jar.update_cookies({"wxsandbox_openid": ALICE})
    page = await browser.get(f"{app_url}/wx/page/bind")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text_body).group(1)
    await browser.post(f"{app_url}/wx/page/bind", data={"_xsrf": xsrf, "student_no": "2023001"})
    return await browser.get(f"{app_url}/wx/page/grades?term=1")


def share_attrs(body: str) -> dict:
    tag = re.search(r'<div id="wx-share"[^>]*>', body).group(0)
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', tag)}


@pytest.mark.gen_test
async def test_a_business_page_carries_its_entry_s_share_card(app_url, config, entries, sandbox, browser):
    page = await signed_in_grades(browser, app_url)
    assert page.status == 200 and str(page.url) == f"{app_url}/wx/page/grades?term=1"
    data = share_attrs(page.text_body)
    assert data["title"] == HOSTILE_TITLE and data["link"] == f"{app_url}/wx/go/score"
    # The title is an admin's text: escaped into the attribute, never markup.
    assert "<script>alert(1)</script>" not in page.text_body
    # Signed for the URL the browser shows: WX_APP_HOST + the request's path and query.
    assert data["url"] == f"{app_url}/wx/page/grades?term=1"
    (ticket,) = stand_in_tickets(sandbox)
    assert data["signature"] == string1_signature(ticket, data["nonce-str"], data["timestamp"], data["url"])
    assert data["app-id"] == sandbox.appid
    # The page may run exactly the JS-SDK script it loads, and no inline script.
    assert f'<script src="{config.jssdk_script}"></script>' in page.text_body
    csp = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {config.jssdk_script};" in csp and "unsafe-inline" not in csp
    assert "/static/js/share.js" in page.text_body


@pytest.mark.gen_test
async def test_pages_without_a_share_card_do_not_allow_the_js_sdk(app_url, config, entries, sandbox, browser):
    home = await browser.get(f"{app_url}/wx/page/home")
    assert "script-src 'self';" in home.headers["Content-Security-Policy"]
    assert config.jssdk_script not in home.headers["Content-Security-Policy"]
    assert 'id="wx-share"' not in home.text_body and sandbox.calls[GETTICKET] == 0


@pytest.mark.gen_test
async def test_no_share_card_when_wechat_is_down_or_the_entry_is_gone(app_url, config, entries, sandbox, browser):
    sandbox.fail(GETTICKET, errcode=-1, count=0)
    page = await signed_in_grades(browser, app_url)
    # The page itself still works; only the card is missing, and so is the script's permission.
    assert page.status == 200 and 'id="student-no"' in page.text_body and 'id="wx-share"' not in page.text_body
    assert config.jssdk_script not in page.headers["Content-Security-Policy"]
    sandbox.faults.clear()
    assert 'id="wx-share"' in (await browser.get(f"{app_url}/wx/page/grades")).text_body
    await entries.state_entries.delete("score", by="test")
    page = await browser.get(f"{app_url}/wx/page/grades")
    assert page.status == 200 and 'id="student-no"' in page.text_body and 'id="wx-share"' not in page.text_body


@pytest.mark.gen_test
async def test_no_share_card_outside_wechat(app_url, entries, sandbox, browser):
    from conftest import DESKTOP_UA

    await signed_in_grades(browser, app_url)
    calls = sandbox.calls[GETTICKET]
    # The same session in a browser that is not WeChat's: the page, but no JS-SDK to configure.
    page = await browser.get(f"{app_url}/wx/page/grades", headers={"User-Agent": DESKTOP_UA})
    assert page.status == 200 and 'id="student-no"' in page.text_body
    assert 'id="wx-share"' not in page.text_body and sandbox.calls[GETTICKET] == calls
