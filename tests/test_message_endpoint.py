"""/wx over real HTTP: verification, every message mode, routing to links, retries and hostile input."""

from __future__ import annotations

import time

import pytest
from tornado.httpclient import HTTPClientError

import wxmsg
from conftest import APPID, ORIGINAL_ID
from server.wechat.messages import parse_xml
from server.wechat.signature import sign

OPENID = "oFollower000000000000001"


async def seed(services, *entries):
    for key, page, title, keywords, scope in entries:
        await services.store.set_state(key, {"page": page, "title": title, "keywords": keywords, "scope": scope}, by="test")
    await services.state_map.refresh()


SCORE = ("score", "/wx/page/bind", "查成绩", ["成绩", "score"], "snsapi_base")
ME = ("me", "/wx/page/me", "我的资料", ["我的"], "snsapi_userinfo")


async def post(http_client, app_url, body, query=None, expect=200):
    url = f"{app_url}/wx?{query or wxmsg.query()}"
    try:
        response = await http_client.fetch(url, method="POST", body=body if isinstance(body, bytes) else body.encode())
    except HTTPClientError as exc:
        assert exc.code == expect, f"expected {expect}, got {exc.code}: {exc.response.body[:200] if exc.response else ''}"
        return exc.response
    assert response.code == expect
    return response


def reply_fields(response) -> dict:
    return parse_xml(response.body)


# ---- GET verification (docs/wechat-protocol.md §1) ----------------------------------------------------

@pytest.mark.gen_test
async def test_verification_echoes_echostr(http_client, app_url):
    response = await http_client.fetch(f"{app_url}/wx?{wxmsg.query(echostr='4375120948345356249')}")
    assert response.body == b"4375120948345356249"


@pytest.mark.gen_test
@pytest.mark.parametrize("query", [
    "signature=0000000000000000000000000000000000000000&timestamp=1&nonce=2&echostr=x",
    "timestamp=1&nonce=2&echostr=x",
    "",
])
async def test_verification_with_bad_signature_is_refused(http_client, app_url, query):
    with pytest.raises(HTTPClientError) as info:
        await http_client.fetch(f"{app_url}/wx?{query}")
    assert info.value.code == 403
    assert b"x" not in info.value.response.body.replace(b"bad", b"")


# ---- routing -------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_keyword_text_gets_authorize_link(http_client, app_url, services, config):
    await seed(services, SCORE, ME)
    fields = reply_fields(await post(http_client, app_url, wxmsg.text("成绩")))
    assert fields["MsgType"] == "text"
    assert fields["ToUserName"] == OPENID and fields["FromUserName"] == ORIGINAL_ID
    assert fields["Content"] == f'<a href="{config.app_host}/wx/go/score">查成绩</a>'


@pytest.mark.gen_test
async def test_text_containing_keyword_matches_case_insensitively(http_client, app_url, services, config):
    await seed(services, SCORE)
    fields = reply_fields(await post(http_client, app_url, wxmsg.text("我想查 SCORE 谢谢")))
    assert "/wx/go/score" in fields["Content"]


@pytest.mark.gen_test
async def test_unmatched_text_gets_default_reply_listing_keywords(http_client, app_url, services):
    await seed(services, SCORE, ME)
    content = reply_fields(await post(http_client, app_url, wxmsg.text("hello")))["Content"]
    assert "没有找到" in content and "成绩" in content and "我的" in content


@pytest.mark.gen_test
async def test_configured_default_reply_is_used(http_client, app_url, services):
    await seed(services, SCORE)
    await services.store.set_setting("default_reply", "Try: {keywords}", by="test")
    await services.state_map.refresh()
    content = reply_fields(await post(http_client, app_url, wxmsg.text("hello")))["Content"]
    assert content == "Try: 成绩"


@pytest.mark.gen_test
async def test_subscribe_gets_welcome_and_marks_user_subscribed(http_client, app_url, services):
    await seed(services, SCORE, ME)
    await services.store.set_setting("welcome", "Welcome!\n{links}", by="test")
    await services.state_map.refresh()
    content = reply_fields(await post(http_client, app_url, wxmsg.event("subscribe", "")))["Content"]
    assert content.startswith("Welcome!") and "/wx/go/me" in content and "/wx/go/score" in content
    await services.writes.wait_idle()
    assert (await services.store.get_user(OPENID))["subscribed"] is True
    response = await post(http_client, app_url, wxmsg.event("unsubscribe", create_time=int(time.time()) + 1))
    assert response.body == b"success"
    await services.writes.wait_idle()
    assert (await services.store.get_user(OPENID))["subscribed"] is False


@pytest.mark.gen_test
async def test_subscribe_by_qr_scene_gets_that_entry(http_client, app_url, services):
    await seed(services, SCORE, ME)
    content = reply_fields(await post(http_client, app_url, wxmsg.event("subscribe", "qrscene_me", extra={"Ticket": "TICKET"})))["Content"]
    assert content.endswith("/wx/go/me\">我的资料</a>")


@pytest.mark.gen_test
async def test_menu_click_with_state_key_gets_that_link(http_client, app_url, services):
    await seed(services, SCORE, ME)
    content = reply_fields(await post(http_client, app_url, wxmsg.event("CLICK", "me")))["Content"]
    assert "/wx/go/me" in content and "我的资料" in content


@pytest.mark.gen_test
async def test_menu_click_with_unknown_key_gets_default_reply(http_client, app_url, services):
    await seed(services, SCORE)
    content = reply_fields(await post(http_client, app_url, wxmsg.event("CLICK", "gone")))["Content"]
    assert "没有找到" in content


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    wxmsg.event("VIEW", "http://127.0.0.1/x", extra={"MenuId": "1"}),
    wxmsg.event("view_miniprogram", "pages/index/index", extra={"MenuId": "1"}),
    wxmsg.event("LOCATION", extra={"Latitude": "23.1", "Longitude": "113.3", "Precision": "119.3"}),
    wxmsg.event("TEMPLATESENDJOBFINISH", extra={"MsgID": 200163836, "Status": "success"}),
    wxmsg.event("SCAN", "unknownscene", extra={"Ticket": "T"}),
    wxmsg.event("some_future_event"),
])
async def test_events_without_a_reply_answer_success(http_client, app_url, services, body):
    response = await post(http_client, app_url, body)
    assert response.body == b"success"


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    wxmsg.push("image", PicUrl="http://x/y.jpg", MediaId="m", MsgId=11),
    wxmsg.push("voice", MediaId="m", Format="amr", MsgId=12),
    wxmsg.push("video", MediaId="m", ThumbMediaId="t", MsgId=13),
    wxmsg.push("shortvideo", MediaId="m", ThumbMediaId="t", MsgId=14),
    wxmsg.push("location", Location_X="23.13", Location_Y="113.26", Scale="20", Label="广州", MsgId=15),
    wxmsg.push("link", Title="t", Description="d", Url="http://x", MsgId=16),
    wxmsg.push("miniprogrampage", Title="t", MsgId=17),
])
async def test_other_message_types_get_default_reply(http_client, app_url, services, body):
    await seed(services, SCORE)
    assert "没有找到" in reply_fields(await post(http_client, app_url, body))["Content"]


@pytest.mark.gen_test
async def test_voice_recognition_matches_keywords(http_client, app_url, services):
    await seed(services, SCORE)
    body = wxmsg.push("voice", MediaId="m", Format="amr", Recognition="查成绩。", MsgId=21)
    assert "/wx/go/score" in reply_fields(await post(http_client, app_url, body))["Content"]


# ---- encrypted modes (docs/wechat-protocol.md §2, §3) --------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("compatible", [False, True])
async def test_encrypted_request_gets_encrypted_reply(http_client, app_url, services, compatible):
    await seed(services, SCORE)
    query, body = wxmsg.encrypted(wxmsg.text("成绩"), compatible=compatible)
    response = await post(http_client, app_url, body, query)
    envelope = parse_xml(response.body)
    assert set(envelope) >= {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    inner = parse_xml(wxmsg.open_reply(response.body.decode()))
    assert "/wx/go/score" in inner["Content"] and inner["ToUserName"] == OPENID


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_REQUIRE_AES": "1"}])
async def test_require_aes_refuses_plaintext(http_client, app_url, services, env_overrides):
    await post(http_client, app_url, wxmsg.text("成绩", msg_id=31), expect=403)
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=32))
    await post(http_client, app_url, body, query)


def _tamper(kind: str) -> tuple[str, str]:
    import base64

    from server.wechat.crypto import _pad
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    xml = wxmsg.text("成绩", msg_id=41)
    if kind == "wrong_appid":
        return wxmsg.encrypted(xml, appid="wxffffffffffffffff")
    if kind == "bad_msg_signature":
        q, body = wxmsg.encrypted(xml)
        return q.replace("msg_signature=", "msg_signature=0"), body
    key = base64.b64decode(wxmsg.AES_KEY + "=")
    if kind == "bad_padding":
        plain = _pad(b"0123456789abcdef" + len(xml).to_bytes(4, "big") + xml.encode() + APPID.encode())
        plain = plain[:-1] + b"\x00"
    else:
        plain = _pad(b"0123456789abcdef" + len(xml).to_bytes(4, "big") + xml.encode() + APPID.encode())
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    encrypt = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    if kind == "truncated_base64":
        encrypt = encrypt[:-7]
    ts, nonce = wxmsg.now(), wxmsg.fresh_nonce()
    msg_signature = sign(wxmsg.TOKEN, ts, nonce, encrypt)
    body = f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return wxmsg.query(ts, nonce, encrypt_type="aes", msg_signature=msg_signature), body


@pytest.mark.gen_test
@pytest.mark.parametrize("kind,status", [
    ("wrong_appid", 400), ("bad_padding", 400), ("truncated_base64", 400), ("bad_msg_signature", 403),
])
async def test_bad_ciphertext_is_refused_and_changes_nothing(http_client, app_url, services, kind, status):
    query, body = _tamper(kind)
    await post(http_client, app_url, body, query, expect=status)
    assert await services.store.messages.count_documents({}) == 0
    # The server keeps serving.
    await post(http_client, app_url, wxmsg.text("hi", msg_id=42))


# ---- signatures and hostile bodies --------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("query", [
    "signature=deadbeef&timestamp=1700000000&nonce=1234567890",
    "timestamp=1700000000&nonce=1234567890",
    wxmsg.query(token="othertoken"),
])
async def test_bad_signature_is_refused_before_anything_runs(http_client, app_url, services, query):
    await post(http_client, app_url, wxmsg.event("subscribe", ""), query, expect=403)
    assert await services.store.get_user(OPENID) is None
    assert await services.store.messages.count_documents({}) == 0


HOSTILE = {
    "doctype": '<?xml version="1.0"?><!DOCTYPE xml [<!ELEMENT xml ANY>]><xml><MsgType>text</MsgType></xml>',
    "external_entity": '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                       '<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>'
                       '<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>',
    "billion_laughs": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                      + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
                      + ']><xml><Content>&lol9;</Content></xml>',
    "not_xml": "this is not xml",
    "wrong_root": "<root><MsgType>text</MsgType></root>",
    "missing_fields": "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[x]]></Content></xml>",
    "bad_create_time": wxmsg.push("text", create_time=0).replace("<CreateTime>0</CreateTime>", "<CreateTime>soon</CreateTime>"),
    "empty": "",
}


@pytest.mark.gen_test
@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_xml_is_refused_with_400(http_client, app_url, services, name):
    started = time.monotonic()
    response = await post(http_client, app_url, HOSTILE[name], expect=400)
    assert time.monotonic() - started < 5  # a generous bound: expansion would take far longer or crash
    assert b"root:" not in response.body and b"lollol" not in response.body
    assert await services.store.messages.count_documents({}) == 0
    await post(http_client, app_url, wxmsg.text("still here", msg_id=51))


@pytest.mark.gen_test
async def test_body_over_64_kib_is_refused_with_413(http_client, app_url, services):
    body = wxmsg.text("x" * (64 * 1024 + 10))
    await post(http_client, app_url, body, expect=413)
    await post(http_client, app_url, wxmsg.text("still here", msg_id=52))


@pytest.mark.gen_test
async def test_control_characters_and_invalid_utf8_in_text_still_get_a_reply(http_client, app_url, services):
    await seed(services, SCORE)
    body = wxmsg.text("成\x01绩\x0b", msg_id=61).encode("utf-8").replace(b"\x0b", b"\xff\xfe")
    fields = reply_fields(await post(http_client, app_url, body))
    assert "/wx/go/score" in fields["Content"]


# ---- retries (docs/wechat-protocol.md §4.4) -------------------------------------------------------------

@pytest.mark.gen_test
async def test_retry_gets_the_first_reply(http_client, app_url, services):
    await seed(services, SCORE)
    first = await post(http_client, app_url, wxmsg.text("成绩", msg_id=71, create_time=1700000001))
    # Between the delivery and WeChat's retry the map changes: the retry must not see that.
    await services.store.set_state("score", {"page": "/x", "title": "Changed", "keywords": ["成绩"], "scope": "snsapi_base"}, by="test")
    await services.state_map.refresh()
    again = await post(http_client, app_url, wxmsg.text("成绩", msg_id=71, create_time=1700000001))
    assert again.body == first.body
    other = await post(http_client, app_url, wxmsg.text("成绩", msg_id=72))
    assert b"Changed" in other.body


@pytest.mark.gen_test
async def test_retry_reaching_another_process_gets_the_first_reply(http_client, app_url, services, config, mongo_uri):
    """A second, independent set of services (own client, own memory) stands for another process."""
    from server.messaging import Delivery
    from server.runtime import close_services, open_services

    await seed(services, SCORE)
    body = wxmsg.event("CLICK", "score", create_time=1700000002)
    first = await post(http_client, app_url, body)
    other = await open_services(config, mongo_uri, start_background=False)
    try:
        await other.store.set_state("score", {"page": "/y", "title": "Other", "keywords": [], "scope": "snsapi_base"}, by="t")
        await other.state_map.refresh()
        ts, nonce = wxmsg.now(), wxmsg.fresh_nonce()
        reply = await other.messages.handle(Delivery(sign(wxmsg.TOKEN, ts, nonce), ts, nonce, body=body.encode()))
    finally:
        await close_services(other)
    assert reply.encode() == first.body


@pytest.mark.gen_test
async def test_encrypted_retry_carries_the_same_content(http_client, app_url, services):
    await seed(services, SCORE)
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=81, create_time=1700000003))
    first = wxmsg.open_reply((await post(http_client, app_url, body, query)).body.decode())
    second = wxmsg.open_reply((await post(http_client, app_url, body, query)).body.decode())
    assert first == second


@pytest.mark.gen_test
async def test_map_change_reaches_replies_without_restart(http_client, app_url, services):
    await seed(services, SCORE)
    await services.store.set_state("grades", {"page": "/wx/page/me", "title": "Grades", "keywords": ["grades"], "scope": "snsapi_base"}, by="t")
    await services.state_map.refresh()
    assert "/wx/go/grades" in reply_fields(await post(http_client, app_url, wxmsg.text("grades", msg_id=91)))["Content"]
