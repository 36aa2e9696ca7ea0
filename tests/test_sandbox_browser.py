"""The sandbox pages in a real browser (Chromium): safe reply rendering, menu, consent flow."""

import json
import time

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from browser import ARGS, CHROMIUM, require_chromium
from conftest import APPID, TOKEN, WECHAT_UA
from server.sandbox import Sandbox, make_sandbox_app
from server.wechat.messages import parse_xml
from server.wechat.oauth import authorize_url
from server.wechat.replies import text_reply
from server.wechat.signature import check_signature
from server.sandbox.state import ALICE, MALLORY  # the stand-in's demo followers


@pytest.fixture(autouse=True)
def chromium_present():
    require_chromium()  # skips locally without it, fails under CI

# A reply with one good link, and three things that must stay text.
HOSTILE_REPLY = ('看 <a href="https://example.com/x?a=1&amp;b=2">成绩 Grades</a> '
                 '<script>alert(1)</script> <a href="javascript:alert(2)">bad</a> '
                 '<img src=x onerror=alert(3)>')


class WxHandler(tornado.web.RequestHandler):
    def post(self):
        args = {k: self.get_query_argument(k) for k in ("signature", "timestamp", "nonce")}
        if not check_signature(TOKEN, args["signature"], args["timestamp"], args["nonce"]):
            raise tornado.web.HTTPError(403)
        fields = parse_xml(self.request.body)
        self.settings["pushes"].append(fields)
        if fields["MsgType"] == "event":
            content = f"clicked {fields.get('EventKey', '')}"
        else:
            content = HOSTILE_REPLY
        self.finish(text_reply(fields["FromUserName"], fields["ToUserName"], content,
                               int(time.time())))


class CallbackHandler(tornado.web.RequestHandler):
    def get(self):
        self.write({k: self.get_query_argument(k) for k in self.request.query_arguments})


@pytest.fixture
def wx_app(io_loop):
    """A fake server: /wx answers replies, /cb shows the authorization callback's query."""
    pushes = []
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(tornado.web.Application(
        [(r"/wx", WxHandler), (r"/cb", CallbackHandler)], pushes=pushes))
    server.add_socket(sock)
    yield f"http://127.0.0.1:{port}", pushes
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def sandbox(wx_app):
    return Sandbox(APPID, "secret", TOKEN, server_url=wx_app[0])


@pytest.fixture
def app(sandbox):
    return make_sandbox_app(sandbox)


class Browser:
    """One Chromium for one test; records dialogs (an alert means an XSS got through)."""

    async def __aenter__(self):
        from playwright.async_api import async_playwright
        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        # The follower's phone: the stand-in's authorize page, like WeChat's, works only in WeChat.
        self.page = await self.browser.new_page(user_agent=WECHAT_UA)
        self.dialogs = []
        self.csp_errors = []

        async def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("console", lambda msg: self.csp_errors.append(msg.text)
                     if "Content Security Policy" in msg.text else None)
        return self.page

    async def __aexit__(self, *exc):
        await self.browser.close()
        await self._playwright.stop()


@pytest.mark.gen_test(timeout=60)
async def test_a_reply_shows_http_links_as_links_and_everything_else_as_text(url, wx_app):
    async with Browser() as page:
        browser = page  # for readability below
        await browser.goto(url + "/")
        await browser.wait_for_selector("#who:has-text('Alice 小明')")
        await browser.fill("#text", "成绩")
        await browser.click("#send")
        bubble = browser.locator(".row.account .bubble").last
        await bubble.wait_for()
        links = bubble.locator("a")
        assert await links.count() == 1
        assert await links.first.get_attribute("href") == "https://example.com/x?a=1&b=2"
        assert await links.first.text_content() == "成绩 Grades"
        text = await bubble.text_content()
        assert "<script>alert(1)</script>" in text
        assert '<a href="javascript:alert(2)">bad</a>' in text
        assert "<img src=x onerror=alert(3)>" in text
        assert await bubble.locator("img, script").count() == 0
        assert await browser.locator(".row.follower .bubble").last.text_content() == "成绩"
    assert wx_app[1][0]["Content"] == "成绩"


@pytest.mark.gen_test(timeout=60)
async def test_menu_clicks_and_customer_service_messages_appear(url, wx_app, sandbox):
    async with Browser() as page:
        await page.goto(url + "/")
        # As on a phone, no menu until one is published (/cgi-bin/menu/create).
        await page.wait_for_selector("#menu:has-text('No menu published')")
        sandbox.menu = {"button": [{"type": "click", "name": "成绩", "key": "grades"},
                                   {"name": "更多", "sub_button": [{"type": "click", "name": "帮助 Help", "key": "help"}]}]}
        await page.reload()
        await page.wait_for_selector("#menu button")
        await page.click("#menu button:has-text('成绩')")  # a CLICK button
        await page.wait_for_selector(".row.account .bubble:has-text('clicked grades')")
        await page.click("#menu button:has-text('更多')")
        await page.click("#submenu button:has-text('帮助')")
        await page.wait_for_selector(".row.account .bubble:has-text('clicked help')")
        # §8.4: a customer-service message shows up through the page's inbox poll.
        sandbox.record(ALICE, "account", {"type": "text", "content": "客服: 成绩已出",
                                          "via": "custom"})
        await page.wait_for_selector(".bubble:has-text('客服: 成绩已出')", timeout=10_000)
    assert [(p["Event"], p["EventKey"]) for p in wx_app[1]] == [("CLICK", "grades"),
                                                                 ("CLICK", "help")]


@pytest.mark.gen_test(timeout=60)
async def test_consent_in_the_browser_escapes_and_allow_reaches_the_callback(url, wx_app):
    callback = wx_app[0] + "/cb"
    browser = Browser()
    async with browser as page:
        await page.goto(url + "/")
        await page.wait_for_selector("#follower option", state="attached")
        await page.select_option("#follower", MALLORY)
        await page.wait_for_selector("#who:has-text('<script>')")
        await page.goto(authorize_url(url, APPID, callback, "snsapi_userinfo", "k42"))
        assert await page.text_content(".nickname") == "<script>alert(1)</script>"
        await page.click("button[value=allow]")
        await page.wait_for_url(callback + "?**")
        answer = json.loads(await page.text_content("body"))
        assert answer["state"] == "k42" and len(answer["code"]) == 32
    assert browser.dialogs == []
    assert browser.csp_errors == []  # form-action lets the consent redirect through


@pytest.mark.gen_test(timeout=60)
async def test_refuse_in_the_browser_comes_back_without_a_code(url, wx_app):
    callback = wx_app[0] + "/cb"
    async with Browser() as page:
        await page.goto(authorize_url(url, APPID, callback, "snsapi_userinfo", "k43"))
        await page.click("button[value=refuse]")
        await page.wait_for_url(callback + "?**")
        assert json.loads(await page.text_content("body")) == {"state": "k43"}
