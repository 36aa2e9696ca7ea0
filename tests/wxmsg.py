"""Test helper: WeChat pushes built by hand (signed, optionally encrypted), to aim at /wx precisely."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from server.wechat.crypto import MessageCrypto
from server.wechat.signature import sign

from conftest import AES_KEY, APPID, ORIGINAL_ID, TOKEN


def push(msg_type: str, openid: str = "oFollower000000000000001", create_time: int | None = None, **fields) -> str:
    """A push body; str values become CDATA, ints stay bare (docs/wechat-protocol.md §4.1)."""
    create_time = int(time.time()) if create_time is None else create_time
    parts = [f"<ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>",
             f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time}</CreateTime>",
             f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


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


def fresh_nonce() -> str:
    return str(secrets.randbelow(9 * 10**9) + 10**9)  # WeChat's nonces are digits (§2)


def query(timestamp: str | None = None, nonce: str | None = None, token: str = TOKEN, **extra) -> str:
    """A signed query string: now and a fresh nonce unless given (/wx refuses stale or reused ones)."""
    timestamp = now() if timestamp is None else timestamp
    nonce = fresh_nonce() if nonce is None else nonce
    return urlencode({"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                      "openid": "oFollower000000000000001", **extra})


def encrypted(xml: str, timestamp: str | None = None, nonce: str | None = None,
              appid: str = APPID, compatible: bool = False, key: str = AES_KEY) -> tuple[str, str]:
    """(query, body) of a safe-mode (or compatible-mode) push."""
    timestamp = now() if timestamp is None else timestamp
    nonce = fresh_nonce() if nonce is None else nonce
    crypto = MessageCrypto(TOKEN, key, appid)
    encrypt, msg_signature = crypto.encrypt_message(xml, timestamp, nonce)
    if compatible:
        body = xml[: -len("</xml>")] + f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    else:
        body = f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return query(timestamp, nonce, encrypt_type="aes", msg_signature=msg_signature), body


def open_reply(body: str, key: str = AES_KEY) -> bytes:
    """The plaintext XML inside an encrypted reply envelope, after checking its MsgSignature."""
    from server.wechat.messages import parse_xml

    envelope = parse_xml(body.encode())
    crypto = MessageCrypto(TOKEN, key, APPID)
    return crypto.decrypt_message(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
