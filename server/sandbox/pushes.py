"""WeChat's pushes to /wx, built as WeChat builds them (XML, signature, encryption).

The stand-in delivers with these, and the tests and benchmarks aim at /wx with them, so all
three send the same bytes (docs/wechat-protocol.md §2, §3, §4.1).
"""

from __future__ import annotations

import secrets

from server.wechat.crypto import MessageCrypto
from server.wechat.signature import sign

MODES = ("plaintext", "compatible", "safe")


def cdata(value) -> str:
    # Unlike replies.cdata, forbidden control characters are kept: WeChat passes on what the
    # follower typed, and the server must cope with it (DESIGN.md, Flows: Messages 2).
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def push_xml(original_id: str, openid: str, create_time: int, msg_type: str, fields) -> str:
    """The <xml> of one push (§4.1): strings in CDATA, ints bare, in WeChat's field order.
    `fields` is a list of (name, value) pairs or a dict."""
    parts = [f"<ToUserName>{cdata(original_id)}</ToUserName>",
             f"<FromUserName>{cdata(openid)}</FromUserName>",
             f"<CreateTime>{int(create_time)}</CreateTime>",
             f"<MsgType>{cdata(msg_type)}</MsgType>"]
    for name, value in (fields.items() if isinstance(fields, dict) else fields):
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}>{cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def fresh_nonce() -> str:
    return str(secrets.randbelow(9 * 10**9) + 10**9)  # WeChat's nonces are digits (§2)


def signed_push(xml: str, *, token: str, timestamp: str, nonce: str, mode: str = "plaintext",
                aes_key: str | None = None, appid: str | None = None, original_id: str = "",
                crypto: MessageCrypto | None = None, openid: str | None = None) -> tuple[dict, str]:
    """(query parameters, body) of the POST to /wx in `mode` (§2, §3.5, §3.6); WeChat adds the
    follower's `openid` to the query too."""
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid is not None:
        query["openid"] = openid
    if mode == "plaintext":
        return query, xml
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    crypto = crypto or MessageCrypto(token, aes_key, appid)
    encrypt, msg_signature = crypto.encrypt_message(xml, timestamp, nonce)
    query.update(encrypt_type="aes", msg_signature=msg_signature)
    if mode == "compatible":
        # §2 compatible mode: the plain fields and the Encrypt element in one <xml>.
        return query, xml[:-len("</xml>")] + f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
    return query, f"<xml><ToUserName>{cdata(original_id)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
