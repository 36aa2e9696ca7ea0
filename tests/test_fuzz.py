"""Property tests (Hypothesis): any input gets a documented outcome, never an unhandled exception."""

from __future__ import annotations

import asyncio
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wxconfig
import wxmsg
from conftest import AES_KEY, APPID, COOKIE_SECRET, SECRET, TOKEN
from server.messaging import Delivery, MessageService, Rejected
from server.redirects import BadTarget, check_target, safe_target
from server.statemap import StateMap
from server.wechat.crypto import MessageCrypto
from server.wechat.signature import sign

DEFAULT = "/wx/page/home"
URLISH = st.text(alphabet=string.printable + "\\\u3000\u202e%", max_size=80)


@settings(max_examples=600, deadline=None)
@given(st.one_of(URLISH, st.builds(lambda a, b: a + b, st.sampled_from(["/", "//", "http://", "https://", "javascript:", "/%2F", "\\"]), URLISH)))
def test_redirect_validator_never_lets_another_site_through(target):
    landed = safe_target(target, DEFAULT, ("partner.example",), "https://wx.example.com")
    assert landed == DEFAULT or landed == target
    if landed == target:
        # Whatever passed is a same-site path or an allowed http(s) URL.
        lowered = target.lower()
        assert (target.startswith("/") and not target.startswith("//")) or lowered.startswith(
            ("http://wx.example.com", "https://wx.example.com", "http://partner.example", "https://partner.example"))
        assert "\\" not in target and not any(ord(c) < 0x21 for c in target)
    else:
        try:
            check_target(target, ("partner.example",), "https://wx.example.com")
            raise AssertionError("check_target accepted what safe_target refused")
        except BadTarget:
            pass


class _NoStore:
    """A store that is down: the message path must still answer from memory."""

    def __getattr__(self, name):
        async def down(*args, **kwargs):
            raise ConnectionError("store is down")

        return down


def _service() -> MessageService:
    config = wxconfig.load({"WX_APPID": APPID, "WX_APPSECRET": SECRET, "WX_TOKEN": TOKEN, "WX_AES_KEY": AES_KEY,
                            "WX_COOKIE_SECRET": COOKIE_SECRET})
    store = _NoStore()
    return MessageService(config, store, StateMap(store), MessageCrypto(TOKEN, AES_KEY, APPID))


SERVICE = _service()


def _signed(body: bytes, encrypt: str | None = None) -> Delivery:
    """A delivery signed now with a fresh nonce, as WeChat sends them (stale or reused ones are refused)."""
    ts, nonce = wxmsg.now(), wxmsg.fresh_nonce()
    if encrypt is None:
        return Delivery(sign(TOKEN, ts, nonce), ts, nonce, body=body)
    return Delivery(sign(TOKEN, ts, nonce), ts, nonce, "aes", sign(TOKEN, ts, nonce, encrypt), body)


def _handle(delivery: Delivery):
    try:
        return asyncio.run(SERVICE.handle(delivery))
    except Rejected as exc:
        assert exc.status in (400, 403, 413)
        return exc


FIELD = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey", "Encrypt"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD, st.one_of(st.text(max_size=40), st.integers())), max_size=8))
def test_signed_messages_with_any_fields_get_a_reply_or_a_clear_refusal(fields):
    body = "<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields) + "</xml>"
    outcome = _handle(_signed(body.encode("utf-8", "surrogatepass")))
    assert isinstance(outcome, (str, Rejected))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_signed_arbitrary_bytes_get_a_reply_or_a_clear_refusal(body):
    assert isinstance(_handle(_signed(body)), (str, Rejected))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=200))
def test_encrypted_mode_with_any_ciphertext_is_refused_cleanly(encrypt):
    body = f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    outcome = _handle(_signed(body.encode(), encrypt))
    assert isinstance(outcome, Rejected) and outcome.status == 400


def test_valid_encrypted_message_still_answers_without_store():
    query, body = wxmsg.encrypted(wxmsg.text("hello", msg_id=1))
    from urllib.parse import parse_qs

    q = {k: v[0] for k, v in parse_qs(query).items()}
    reply = _handle(Delivery(q["signature"], q["timestamp"], q["nonce"], "aes", q["msg_signature"], body.encode()))
    assert isinstance(reply, str) and "<Encrypt>" in reply
