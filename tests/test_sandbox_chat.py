"""The chat page's delivery to a server's /wx, plaintext and AES, against a tiny fake server."""

import asyncio
import json
import re
import time
from dataclasses import dataclass

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from server import i18n
from server.sandbox import Sandbox, make_sandbox_app
from server.sandbox.base import FOLLOWER_COOKIE
from server.sandbox.delivery import UNAVAILABLE
from server.wechat.crypto import MessageCrypto
from server.wechat.messages import parse_xml
from server.wechat.replies import text_reply
from server.wechat.signature import check_signature
from conftest import AES_KEY, APPID, ORIGINAL_ID, TOKEN
from server.sandbox.state import ALICE, BOB  # the stand-in's demo followers

NOTICE = i18n.say(UNAVAILABLE, i18n.locale("zh_CN"))  # what the chat page shows, in its language


@dataclass
class Push:
    query: dict
    body: bytes
    envelope: dict
    fields: dict


class FakeWx:
    """What the fake server received, and how it should answer next."""

    def __init__(self):
        self.pushes: list[Push] = []
        self.answer = "echo"  # echo, success, empty, json, wrong_to, plain, bad_signature, hang, 500
        self.release = asyncio.Event()  # set at teardown, so a hanging handler can finish

    def crypto(self, token=TOKEN):
        return MessageCrypto(token, AES_KEY, APPID)


class WxHandler(tornado.web.RequestHandler):
    """A minimal /wx: verifies like a real server, answers "echo: ..." as a text reply."""

    async def post(self):
        fake: FakeWx = self.settings["fake"]
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        if not check_signature(TOKEN, query.get("signature"), query.get("timestamp"),
                               query.get("nonce")):
            raise tornado.web.HTTPError(403)
        envelope = parse_xml(self.request.body)
        encrypted = query.get("encrypt_type") == "aes"
        fields = envelope
        if encrypted:
            fields = parse_xml(fake.crypto().decrypt_message(
                query["msg_signature"], query["timestamp"], query["nonce"], envelope["Encrypt"]))
        fake.pushes.append(Push(query, self.request.body, envelope, fields))

        if fake.answer == "hang":
            await fake.release.wait()
            return
        if fake.answer == "500":
            raise tornado.web.HTTPError(500)
        if fake.answer in ("success", "empty"):
            return self.finish("success" if fake.answer == "success" else "")
        if fake.answer == "json":
            return self.finish({"reply": "json is not a reply"})
        if fields["MsgType"] == "text":
            content = "echo: " + fields["Content"]
        else:
            content = f"event: {fields['Event']} {fields.get('EventKey', '')}".strip()
        to_user = "oSomeoneElse" if fake.answer == "wrong_to" else fields["FromUserName"]
        xml = text_reply(to_user, fields["ToUserName"], content, int(time.time()))
        if encrypted and fake.answer != "plain":
            token = "not-the-token" if fake.answer == "bad_signature" else TOKEN
            xml = fake.crypto(token).encrypt_reply(xml, query["timestamp"], query["nonce"])
        self.finish(xml)


@pytest.fixture
def fake_wx(io_loop):
    fake = FakeWx()
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/wx", WxHandler)],
                                                                   fake=fake))
    server.add_socket(sock)
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    fake.release.set()
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def sandbox(fake_wx):
    return Sandbox(APPID, "secret", TOKEN, original_id=ORIGINAL_ID, server_url=fake_wx.url)


@pytest.fixture
def app(sandbox):
    return make_sandbox_app(sandbox)


@pytest.fixture
def chat(http_client, url):
    """chat(body, as_=openid) -> (status, JSON) of POST /chat/send."""

    async def chat(body, as_=ALICE, path="/chat/send", content_type="application/json"):
        resp = await http_client.fetch(
            url + path, method="POST", body=json.dumps(body, ensure_ascii=False),
            headers={"Content-Type": content_type, "Cookie": f"{FOLLOWER_COOKIE}={as_}"},
            raise_error=False)
        return resp.code, json.loads(resp.body)

    return chat


def use_aes(sandbox, mode="safe"):
    sandbox.aes_key = AES_KEY
    sandbox.encrypt_mode = mode


# -- what reaches /wx --------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_text_message_reaches_wx_signed_and_the_reply_comes_back(chat, fake_wx):
    status, result = await chat({"type": "text", "content": "成绩 <b>&]]>"})
    assert status == 200
    assert result["reply"] == {"type": "text", "content": "echo: 成绩 <b>&]]>"}
    assert result["notice"] is None
    [push] = fake_wx.pushes
    assert push.query["openid"] == ALICE
    assert "encrypt_type" not in push.query and "msg_signature" not in push.query
    assert push.body.startswith(b"<xml><ToUserName><![CDATA[" + ORIGINAL_ID.encode())
    fields = push.fields
    assert fields["ToUserName"] == ORIGINAL_ID and fields["FromUserName"] == ALICE
    assert fields["MsgType"] == "text" and fields["Content"] == "成绩 <b>&]]>"
    assert re.fullmatch(r"[0-9]{10}", fields["CreateTime"])
    assert re.fullmatch(r"[0-9]{19}", fields["MsgId"])
    assert re.fullmatch(r"[0-9]+", push.query["nonce"])


@pytest.mark.gen_test
async def test_safe_mode_sends_only_tousername_and_encrypt(chat, fake_wx, sandbox):
    use_aes(sandbox)
    status, result = await chat({"type": "text", "content": "你好"})
    assert result["reply"] == {"type": "text", "content": "echo: 你好"}
    [push] = fake_wx.pushes
    assert push.query["encrypt_type"] == "aes" and push.query["msg_signature"]
    assert set(push.envelope) == {"ToUserName", "Encrypt"}
    assert push.envelope["ToUserName"] == ORIGINAL_ID
    assert push.fields["Content"] == "你好" and push.fields["FromUserName"] == ALICE


@pytest.mark.gen_test
async def test_compatible_mode_sends_plain_fields_and_encrypt(chat, fake_wx, sandbox):
    use_aes(sandbox, "compatible")
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["reply"]["content"] == "echo: hi"
    [push] = fake_wx.pushes
    assert push.envelope["Content"] == "hi" and "Encrypt" in push.envelope


@pytest.mark.gen_test
async def test_compatible_mode_accepts_a_plain_reply(chat, fake_wx, sandbox):
    use_aes(sandbox, "compatible")
    fake_wx.answer = "plain"
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["reply"]["content"] == "echo: hi"


@pytest.mark.gen_test
async def test_a_menu_click_is_a_click_event(chat, fake_wx):
    status, result = await chat({"type": "event", "event": "CLICK", "key": "grades"})
    assert result["reply"]["content"] == "event: CLICK grades"
    fields = fake_wx.pushes[0].fields
    assert fields["MsgType"] == "event" and fields["Event"] == "CLICK"
    assert fields["EventKey"] == "grades" and "MsgId" not in fields


@pytest.mark.gen_test
async def test_follow_and_unfollow(chat, fake_wx, sandbox):
    status, result = await chat({"type": "event", "event": "unsubscribe"})
    assert result["reply"] is None  # nobody sees a reply to an unfollow
    assert result["subscribed"] is False and not sandbox.followers[ALICE].subscribed
    assert (await chat({"type": "text", "content": "hi"}))[0] == 409
    status, result = await chat({"type": "event", "event": "subscribe"})
    assert result["reply"]["content"] == "event: subscribe"
    assert sandbox.followers[ALICE].subscribed
    # §4.3: a plain follow carries an empty EventKey.
    assert b"<EventKey><![CDATA[]]></EventKey>" in fake_wx.pushes[-1].body


@pytest.mark.gen_test
async def test_a_view_event_carries_the_url(chat, fake_wx):
    await chat({"type": "event", "event": "VIEW", "key": "https://app.test/wx/go/home"})
    assert fake_wx.pushes[0].fields["EventKey"] == "https://app.test/wx/go/home"


@pytest.mark.parametrize("answer", ["success", "empty"])
@pytest.mark.gen_test
async def test_success_or_empty_shows_nothing(chat, fake_wx, sandbox, answer):
    use_aes(sandbox)  # §3.6: a plain "success" is fine even in safe mode
    fake_wx.answer = answer
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["reply"] is None and result["notice"] is None
    assert [e["from"] for e in result["entries"]] == ["follower"]


# -- what the follower sees when the server fails -----------------------------------------


@pytest.mark.gen_test
async def test_no_answer_in_time_shows_the_official_notice(chat, fake_wx, sandbox):
    sandbox.reply_timeout = 0.2  # WeChat waits 5 s (§5.1); the test need not
    fake_wx.answer = "hang"
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["notice"] == NOTICE == "该公众号暂时无法提供服务，请稍后再试"  # no Accept-Language: Chinese
    assert "0.2" in result["problem"]
    assert result["entries"][-1]["type"] == "notice"


@pytest.mark.parametrize("answer, aes, problem", [
    ("json", False, "not WeChat XML"),
    ("wrong_to", False, "ToUserName"),
    ("500", False, "HTTP 500"),
    ("plain", True, "encrypted reply"),
    ("bad_signature", True, "bad signature"),
])
@pytest.mark.gen_test
async def test_a_reply_wechat_would_refuse_shows_the_notice(chat, fake_wx, sandbox,
                                                            answer, aes, problem):
    if aes:
        use_aes(sandbox)
    fake_wx.answer = answer
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["reply"] is None
    assert result["notice"] == NOTICE
    assert problem in result["problem"]


@pytest.mark.gen_test
async def test_a_bad_signature_from_the_sandbox_would_be_refused(chat, fake_wx, sandbox):
    """Guards the fake: it really checks the signature, so the tests above mean something."""
    sandbox.token = "another-token"
    status, result = await chat({"type": "text", "content": "hi"})
    assert "HTTP 403" in result["problem"] and not fake_wx.pushes


@pytest.mark.gen_test
async def test_without_a_server_url_the_follower_sees_the_notice(chat, sandbox):
    sandbox.server_url = None
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["notice"] == NOTICE and "server_url" in result["problem"]


@pytest.mark.gen_test
async def test_the_notice_reads_in_the_pages_language(http_client, url, sandbox):
    sandbox.server_url = None
    body = json.dumps({"type": "text", "content": "hi"})
    headers = {"Content-Type": "application/json", "Cookie": f"{FOLLOWER_COOKIE}={ALICE}",
               "Accept-Language": "en-US,en;q=0.9"}
    sent = json.loads((await http_client.fetch(url + "/chat/send", method="POST", body=body, headers=headers)).body)
    english = "This account cannot provide its service at the moment. Please try again later."
    assert sent["notice"] == english == str(UNAVAILABLE) and sent["entries"][-1]["content"] == english
    inbox = json.loads((await http_client.fetch(url + "/chat/inbox", headers={"Cookie": f"{FOLLOWER_COOKIE}={ALICE}"})).body)
    assert inbox["entries"][-1]["content"] == NOTICE  # the same entry, read on a Chinese phone
    page = (await http_client.fetch(url + "/chat", headers={"Accept-Language": "en"})).body.decode()
    assert 'lang="en-US"' in page and "WeChat stand-in: you are the follower" in page and 'placeholder="Message"' in page
    assert 'data-followed="You followed the account"' in page and "发消息" not in page
    picked = await http_client.fetch(url + "/chat?lang=en_US")
    assert "WeChat stand-in: you are the follower" in picked.body.decode()
    assert any(c.startswith(f"{i18n.LANG_COOKIE}=en_US;") for c in picked.headers.get_list("Set-Cookie"))
    assert 'href="/chat?lang=zh_CN"' in picked.body.decode()  # the picker


@pytest.mark.gen_test
async def test_an_unreachable_server_shows_the_notice(chat, sandbox):
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    sandbox.server_url = f"http://127.0.0.1:{port}"
    status, result = await chat({"type": "text", "content": "hi"})
    assert result["notice"] == NOTICE and "cannot reach" in result["problem"]


# -- the conversation the page shows ------------------------------------------------------


@pytest.mark.gen_test
async def test_the_conversation_is_kept_for_the_page(chat, http_client, url):
    status, result = await chat({"type": "text", "content": "hi"}, as_=BOB)
    sent, reply = result["entries"]
    assert sent["from"] == "follower" and reply["from"] == "account"
    assert reply["content"] == "echo: hi" and reply["id"] > sent["id"]
    resp = await http_client.fetch(f"{url}/chat/inbox?since={sent['id']}",
                                   headers={"Cookie": f"{FOLLOWER_COOKIE}={BOB}"})
    assert json.loads(resp.body)["entries"] == [reply]
    alice = await http_client.fetch(f"{url}/chat/inbox?since=0")  # no cookie: first follower
    assert json.loads(alice.body)["entries"] == []


@pytest.mark.gen_test
async def test_in_process_resend_repeats_the_msg_id(sandbox, fake_wx):
    first = await sandbox.send_text(ALICE, "hi")
    again = await sandbox.send_text(ALICE, "hi", msg_id=first["msg_id"])
    assert again["reply"]["content"] == "echo: hi"
    assert fake_wx.pushes[0].fields["MsgId"] == fake_wx.pushes[1].fields["MsgId"]


@pytest.mark.parametrize("body, status", [
    ({"type": "text", "content": ""}, 400),
    ({"type": "text"}, 400),
    ({"type": "event", "event": "SCAN"}, 400),
    ({"type": "image"}, 400),
])
@pytest.mark.gen_test
async def test_chat_send_rejects_bad_bodies(chat, fake_wx, body, status):
    assert (await chat(body))[0] == status
    assert not fake_wx.pushes


@pytest.mark.gen_test
async def test_chat_send_wants_json(chat, fake_wx):
    status, _ = await chat({"type": "text", "content": "hi"}, content_type="text/plain")
    assert status == 415 and not fake_wx.pushes


# -- the page, the follower picker and the menu -----------------------------------------


@pytest.mark.gen_test
async def test_the_chat_page_has_no_inline_script(http_client, url):
    for path in ("/", "/chat"):
        resp = await http_client.fetch(url + path)
        page = resp.body.decode()
        assert "模拟微信：你是粉丝" in page and 'placeholder="发消息"' in page
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert scripts and all(" src=" in tag for tag in scripts)
        bodies = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL)
        assert len(bodies) == len(scripts) and not "".join(bodies).strip()
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
    script = await http_client.fetch(url + re.search(r'src="([^"]+)"', page).group(1))
    assert b"innerHTML" not in script.body  # replies are built with textContent only


@pytest.mark.gen_test
async def test_picking_a_follower_sets_a_cookie(http_client, url):
    resp = await http_client.fetch(url + "/chat/follower", method="POST",
                                   body=json.dumps({"openid": BOB}),
                                   headers={"Content-Type": "application/json"})
    assert json.loads(resp.body)["follower"]["openid"] == BOB
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{FOLLOWER_COOKIE}={BOB}") and "HttpOnly" in cookie
    state = await http_client.fetch(url + "/chat/state",
                                    headers={"Cookie": cookie.split(";")[0]})
    assert json.loads(state.body)["follower"]["nickname"] == "Bob 老王"
    missing = await http_client.fetch(url + "/chat/follower", method="POST",
                                      body=json.dumps({"openid": "oNobody"}),
                                      headers={"Content-Type": "application/json"},
                                      raise_error=False)
    assert missing.code == 404


@pytest.mark.gen_test
async def test_the_chat_shows_only_a_published_menu(http_client, url, sandbox):
    # A phone shows no menu until the account publishes one: no made-up demo menu beside the admin's.
    state = json.loads((await http_client.fetch(url + "/chat/state")).body)
    assert state["menu"] is None
    sandbox.menu = {"button": [{"type": "click", "name": "成绩", "key": "grades"}]}
    state = json.loads((await http_client.fetch(url + "/chat/state")).body)
    assert state["menu"] == sandbox.menu
