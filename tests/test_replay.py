"""/wx as an attacker holding a leaked signed query string: stale, replayed and forged deliveries."""

from __future__ import annotations

import logging
import re
import time

import pytest
from tornado.httpclient import HTTPClientError

import wxmsg
from conftest import AES_KEY, ORIGINAL_ID
from server.messaging import Delivery, Rejected
from server.wechat.crypto import MessageCrypto
from server.wechat.messages import parse_xml
from server.wechat.signature import sign

OPENID = "oFollower000000000000001"
PREVIOUS_KEY = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU"
OTHER_KEY = "enl4d3Z1dHNycXBvbm1sa2ppaGdmZWRjYmEwMTIzNDU"
SCORE = ("score", "/wx/page/bind", "查成绩", ["成绩"], "snsapi_base")


async def seed(services, *entries):
    for key, page, title, keywords, scope in entries:
        await services.store.set_state(key, {"page": page, "title": title, "keywords": keywords, "scope": scope}, by="test")
    await services.state_map.refresh()


async def post(http_client, app_url, body: str, query: str | None = None):
    """(status, body) of POST /wx; never raises for an HTTP error status."""
    try:
        response = await http_client.fetch(f"{app_url}/wx?{query or wxmsg.query()}", method="POST", body=body.encode())
    except HTTPClientError as exc:
        return exc.code, exc.response.body if exc.response else b""
    return response.code, response.body


async def get(http_client, app_url, query: str):
    try:
        response = await http_client.fetch(f"{app_url}/wx?{query}")
    except HTTPClientError as exc:
        return exc.code, exc.response.body if exc.response else b""
    return response.code, response.body


def content(body: bytes) -> str:
    return parse_xml(body)["Content"]


# ---- freshness: a signed URL is good for WX_MAX_CLOCK_SKEW seconds -------------------------------

STALE = str(int(time.time()) - 3600)
FUTURE = str(int(time.time()) + 3600)


@pytest.mark.gen_test
@pytest.mark.parametrize("timestamp", [STALE, FUTURE, "1700000000", "0"])
async def test_stale_timestamp_is_refused_on_post_and_changes_nothing(http_client, app_url, services, timestamp):
    status, _ = await post(http_client, app_url, wxmsg.event("subscribe", ""), wxmsg.query(timestamp))
    assert status == 403
    await services.writes.wait_idle()
    assert await services.store.get_user(OPENID) is None
    assert await services.store.messages.count_documents({}) == 0


@pytest.mark.gen_test
async def test_stale_timestamp_is_refused_in_safe_mode(http_client, app_url):
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=11), timestamp=STALE)
    assert (await post(http_client, app_url, body, query))[0] == 403


@pytest.mark.gen_test
async def test_stale_timestamp_is_refused_on_get_verification(http_client, app_url):
    status, body = await get(http_client, app_url, wxmsg.query(STALE, echostr="4375120948345356249"))
    assert status == 403 and b"4375120948345356249" not in body
    status, body = await get(http_client, app_url, wxmsg.query(echostr="4375120948345356249"))
    assert (status, body) == (200, b"4375120948345356249")


@pytest.mark.gen_test
async def test_stale_requests_log_one_line_naming_the_skew_and_the_clock(http_client, app_url, caplog):
    caplog.set_level(logging.WARNING, logger="wxauth")
    stale = str(int(time.time()) - 3600)  # not the module's STALE: the suite may run for minutes first
    for i in range(20):
        assert (await post(http_client, app_url, wxmsg.text("hi", msg_id=100 + i), wxmsg.query(stale)))[0] == 403
    lines = [r.getMessage() for r in caplog.records if "WX_MAX_CLOCK_SKEW" in r.getMessage()]
    assert len(lines) == 1, lines
    assert re.search(r"3[56]\d\d s behind", lines[0]) and "NTP" in lines[0]
    # The flood produced one line in all, not one per request.
    assert len([r for r in caplog.records if r.name == "wxauth.messages"]) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_MAX_CLOCK_SKEW": "0"}])
async def test_skew_zero_turns_the_check_off(http_client, app_url, env_overrides):
    status, body = await post(http_client, app_url, wxmsg.text("hi", msg_id=5), wxmsg.query("1700000000"))
    assert status == 200 and b"<xml>" in body


@pytest.mark.gen_test
@pytest.mark.parametrize("timestamp,expect", [
    ("17e8", 400), ("-1", 400), ("1700000000.5", 400), ("0x65", 400), ("1,7", 400), ("", 403),
    # Not ASCII: no genuine signature can cover it, so the signature check refuses it first.
    ("１７００００００００", 403), ("²", 403), ("١٧", 403),
])
@pytest.mark.parametrize("mode", ["get", "plaintext", "aes"])
async def test_signed_request_with_non_decimal_timestamp_is_refused(http_client, app_url, timestamp, expect, mode):
    if mode == "get":
        status, _ = await get(http_client, app_url, wxmsg.query(timestamp, echostr="x"))
    elif mode == "plaintext":
        status, _ = await post(http_client, app_url, wxmsg.text("hi", msg_id=6), wxmsg.query(timestamp))
    else:
        query, body = wxmsg.encrypted(wxmsg.text("hi", msg_id=6), timestamp=timestamp)
        status, _ = await post(http_client, app_url, body, query)
    assert status == expect


# ---- a (timestamp, nonce) belongs to one message --------------------------------------------------

@pytest.mark.gen_test
async def test_leaked_query_replayed_with_a_forged_body_is_refused(http_client, app_url, services):
    query = wxmsg.query()
    genuine = wxmsg.text("hello", msg_id=20)
    assert (await post(http_client, app_url, genuine, query))[0] == 200
    # Same signed query, another body: a forged unsubscribe in the follower's name.
    forged = wxmsg.event("unsubscribe", "", openid="oVictim00000000000000001")
    assert (await post(http_client, app_url, forged, query))[0] == 403
    await services.writes.wait_idle()
    assert await services.store.get_user("oVictim00000000000000001") is None
    # WeChat's retry of the genuine delivery (identical) still gets its reply.
    status, body = await post(http_client, app_url, genuine, query)
    assert status == 200 and b"<xml>" in body


@pytest.mark.gen_test
async def test_replay_reaching_another_process_is_refused(http_client, app_url, services, config, mongo_uri):
    from server.runtime import close_services, open_services

    ts, nonce = wxmsg.now(), wxmsg.fresh_nonce()
    assert (await post(http_client, app_url, wxmsg.text("hello", msg_id=21), wxmsg.query(ts, nonce)))[0] == 200
    other = await open_services(config, mongo_uri, start_background=False)
    try:
        forged = wxmsg.event("subscribe", "", openid="oForged00000000000000001")
        with pytest.raises(Rejected) as info:
            await other.messages.handle(Delivery(sign(wxmsg.TOKEN, ts, nonce), ts, nonce, body=forged.encode()))
        assert info.value.status == 403 and info.value.kind == "replay"
        await other.writes.wait_idle()
    finally:
        await close_services(other)
    assert await services.store.get_user("oForged00000000000000001") is None


@pytest.mark.gen_test
async def test_forged_message_sharing_a_dedup_key_cannot_decide_the_genuine_reply(http_client, app_url, services):
    await seed(services, SCORE)
    # A forgery that arrives first with the MsgId the genuine message will carry...
    assert (await post(http_client, app_url, wxmsg.text("nothing here", msg_id=30)))[0] == 200
    # ...does not make the genuine one answer with the forgery's reply.
    status, body = await post(http_client, app_url, wxmsg.text("成绩", msg_id=30))
    assert status == 200 and "/wx/go/score" in content(body)


@pytest.mark.gen_test
async def test_a_retry_never_repeats_side_effects(http_client, app_url, services):
    subscribe = wxmsg.event("subscribe", "", create_time=int(time.time()) - 5)
    assert (await post(http_client, app_url, subscribe))[0] == 200
    assert (await post(http_client, app_url, wxmsg.event("unsubscribe", "")))[0] == 200
    # WeChat re-sends the subscribe it got no answer to in time: it must not re-subscribe them.
    assert (await post(http_client, app_url, subscribe))[0] == 200
    await services.writes.wait_idle()
    assert (await services.store.get_user(OPENID))["subscribed"] is False


# ---- the account the message is addressed to ------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_ORIGINAL_ID": ORIGINAL_ID}])
async def test_message_to_another_account_is_refused(http_client, app_url, services, env_overrides):
    other = wxmsg.event("subscribe", "").replace(ORIGINAL_ID, "gh_0ther0ccount")
    assert (await post(http_client, app_url, other))[0] == 403
    await services.writes.wait_idle()
    assert await services.store.get_user(OPENID) is None
    assert (await post(http_client, app_url, wxmsg.event("subscribe", "")))[0] == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_ORIGINAL_ID": ORIGINAL_ID}])
async def test_encrypted_message_to_another_account_is_refused(http_client, app_url, env_overrides):
    query, body = wxmsg.encrypted(wxmsg.text("hi", msg_id=40).replace(ORIGINAL_ID, "gh_0ther0ccount"))
    assert (await post(http_client, app_url, body, query))[0] == 403


# ---- EncodingAESKey rotation ----------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_AES_KEY_PREVIOUS": PREVIOUS_KEY}])
async def test_message_under_the_previous_key_is_answered_under_that_key(http_client, app_url, services, env_overrides):
    await seed(services, SCORE)
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=50), key=PREVIOUS_KEY)
    status, reply = await post(http_client, app_url, body, query)
    assert status == 200
    assert "/wx/go/score" in parse_xml(wxmsg.open_reply(reply.decode(), key=PREVIOUS_KEY))["Content"]
    envelope = parse_xml(reply)
    with pytest.raises(ValueError):
        MessageCrypto(wxmsg.TOKEN, AES_KEY, wxmsg.APPID).decrypt(envelope["Encrypt"])
    # Messages under the new key are answered under the new key.
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=51))
    status, reply = await post(http_client, app_url, body, query)
    assert status == 200 and "/wx/go/score" in parse_xml(wxmsg.open_reply(reply.decode()))["Content"]


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_AES_KEY_PREVIOUS": PREVIOUS_KEY}])
async def test_message_under_an_unknown_key_is_refused(http_client, app_url, env_overrides):
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=52), key=OTHER_KEY)
    assert (await post(http_client, app_url, body, query))[0] == 400


@pytest.mark.gen_test
async def test_without_a_previous_key_the_old_key_is_refused(http_client, app_url):
    query, body = wxmsg.encrypted(wxmsg.text("成绩", msg_id=53), key=PREVIOUS_KEY)
    assert (await post(http_client, app_url, body, query))[0] == 400


# ---- scancode_waitmsg buttons ---------------------------------------------------------------------

def scancode_waitmsg(key: str) -> str:
    info = "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[S-123]]></ScanResult></ScanCodeInfo>"
    return wxmsg.event("scancode_waitmsg", key).replace("</xml>", info + "</xml>")


@pytest.mark.gen_test
async def test_scancode_waitmsg_on_a_mapped_key_gets_the_entry_link(http_client, app_url, services, config):
    await seed(services, SCORE)
    status, body = await post(http_client, app_url, scancode_waitmsg("score"))
    assert status == 200
    assert content(body) == f'<a href="{config.app_host}/wx/go/score">查成绩</a>'


@pytest.mark.gen_test
async def test_scancode_waitmsg_on_an_unmapped_key_gets_the_default_reply(http_client, app_url, services):
    await seed(services, SCORE)
    status, body = await post(http_client, app_url, scancode_waitmsg("nothere"))
    assert status == 200 and "成绩" in content(body)
