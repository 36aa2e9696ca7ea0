"""Test helper: WeChat pushes built by hand (signed, optionally encrypted), to aim at /wx precisely."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from server.sandbox.pushes import fresh_nonce, push_xml, signed_push
from server.wechat.crypto import MessageCrypto

from conftest import AES_KEY, APPID, ORIGINAL_ID, TOKEN


def push(msg_type: str, openid: str = "oFollower000000000000001", create_time: int | None = None, **fields) -> str:
    """A push body; str values become CDATA, ints stay bare (docs/wechat-protocol.md §4.1)."""
    create_time = int(time.time()) if create_time is None else create_time
    return push_xml(ORIGINAL_ID, openid, create_time, msg_type, fields)


def text(content: str, msg_id: int = 1000001, **kw) -> str:
    return push("text", Content=content, MsgId=msg_id, **kw)


def event(name: str, key: str | None = None, **kw) -> str:
    fields = {"Event": name}
    if key is not None:
        fields["EventKey"] = key
    fields.update(kw.pop("extra", {}))
    return push("event", **fields, **kw)


def now() -> str:
    return str(int(time.time()))


def query(timestamp: str | None = None, nonce: str | None = None, token: str = TOKEN, **extra) -> str:
    """A signed query string: now and a fresh nonce unless given (/wx refuses stale or reused ones)."""
    timestamp = now() if timestamp is None else timestamp
    nonce = fresh_nonce() if nonce is None else nonce
    params, _ = signed_push("", token=token, openid="oFollower000000000000001", timestamp=timestamp, nonce=nonce)
    return urlencode({**params, **extra})


def encrypted(xml: str, timestamp: str | None = None, nonce: str | None = None,
              appid: str = APPID, compatible: bool = False, key: str = AES_KEY) -> tuple[str, str]:
    """(query, body) of a safe-mode (or compatible-mode) push."""
    timestamp = now() if timestamp is None else timestamp
    nonce = fresh_nonce() if nonce is None else nonce
    params, body = signed_push(xml, token=TOKEN, openid="oFollower000000000000001", timestamp=timestamp, nonce=nonce,
                               mode="compatible" if compatible else "safe", aes_key=key, appid=appid,
                               original_id=ORIGINAL_ID)
    return urlencode(params), body


def open_reply(body: str, key: str = AES_KEY) -> bytes:
    """The plaintext XML inside an encrypted reply envelope, after checking its MsgSignature."""
    from server.wechat.messages import parse_xml

    envelope = parse_xml(body.encode())
    crypto = MessageCrypto(TOKEN, key, APPID)
    return crypto.decrypt_message(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
