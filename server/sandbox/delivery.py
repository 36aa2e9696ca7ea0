"""Pushes a follower's message to the server's /wx exactly as WeChat does, and reads the reply."""

import logging
import time
from urllib.parse import urlencode

import aiohttp

from server.i18n import T
from server.sandbox.pushes import fresh_nonce, push_xml, signed_push
from server.wechat.crypto import CryptoError, MessageCrypto
from server.wechat.messages import XmlError, parse_xml

log = logging.getLogger("wxauth.sandbox")

# §5.1: what a follower sees when the server does not answer in 5 s or answers garbage (WeChat's
# words; the chat page shows them in its language: SandboxHandler.write_json).
UNAVAILABLE = T("This account cannot provide its service at the moment. Please try again later.")

_MEDIA_REPLIES = {"image": "Image", "voice": "Voice", "video": "Video", "music": "Music"}


def signed_request(sandbox, openid: str, xml: str, timestamp: str, nonce: str) -> tuple[str, str]:
    """(query string, body) of the POST to /wx in the sandbox's mode."""
    mode = sandbox.encrypt_mode if sandbox.aes_key else "plaintext"
    query, body = signed_push(xml, token=sandbox.token, openid=openid, timestamp=timestamp, nonce=nonce, mode=mode,
                              aes_key=sandbox.aes_key, appid=sandbox.appid, original_id=sandbox.original_id)
    return urlencode(query), body


async def deliver(sandbox, openid: str, msg_type: str, extra: list[tuple[str, str | int]],
                  create_time: int | None = None) -> dict:
    """POST one push to server_url/wx; returns {"reply", "notice", "problem", "elapsed"}.

    `notice` is what WeChat would show the follower, `problem` tells the developer why.
    """
    started = time.monotonic()
    result = {"reply": None, "notice": None, "problem": None}

    def trouble(problem: str) -> dict:
        log.info("delivery to %s failed: %s", sandbox.server_url, problem)
        result.update(notice=UNAVAILABLE, problem=problem,
                      elapsed=round(time.monotonic() - started, 3))
        return result

    if not sandbox.server_url:
        return trouble("no server_url is configured for this sandbox")
    create_time = int(create_time if create_time is not None else sandbox.now())
    xml = push_xml(sandbox.original_id, openid, create_time, msg_type, extra)
    timestamp = str(int(sandbox.now()))
    nonce = fresh_nonce()
    query, body = signed_request(sandbox, openid, xml, timestamp, nonce)
    url = sandbox.server_url.rstrip("/") + "/wx?" + query
    timeout = aiohttp.ClientTimeout(total=sandbox.reply_timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, data=body.encode("utf-8"),
                                    headers={"Content-Type": "text/xml"},
                                    allow_redirects=False) as resp:
                status, raw = resp.status, await resp.read()
    except TimeoutError:
        # §4.4: WeChat gives up after 5 s (and would retry; the stand-in does not).
        return trouble(f"no answer within {sandbox.reply_timeout:g} s")
    except aiohttp.ClientError as exc:
        return trouble(f"cannot reach the server ({type(exc).__name__})")
    if status != 200:
        return trouble(f"/wx answered HTTP {status}")
    try:
        reply = read_reply(sandbox, openid, raw)
    except ValueError as exc:
        return trouble(str(exc))
    result.update(reply=reply, elapsed=round(time.monotonic() - started, 3))
    return result


def read_reply(sandbox, openid: str, raw: bytes) -> dict | None:
    """The reply as the chat page shows it, None for "success"/empty (§5.1).

    Raises ValueError naming the problem when WeChat would refuse the reply.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    if text in ("", "success"):
        return None
    try:
        fields = parse_xml(raw)
    except XmlError as exc:
        raise ValueError(f"the reply is not WeChat XML ({exc.reason})") from None
    if "Encrypt" in fields:
        fields = _decrypt_reply(sandbox, fields)
    elif sandbox.aes_key and sandbox.encrypt_mode == "safe":
        raise ValueError("safe mode needs an encrypted reply (§2)")
    # §5.1: the reply goes to the follower (ToUserName) from the account (FromUserName).
    if fields.get("ToUserName") != openid:
        raise ValueError("reply ToUserName is not the follower's openid (§5.1)")
    if fields.get("FromUserName") != sandbox.original_id:
        raise ValueError("reply FromUserName is not the account's original id (§5.1)")
    msg_type = fields.get("MsgType")
    if msg_type == "text":
        return {"type": "text", "content": str(fields.get("Content", ""))}
    if msg_type == "news":
        return {"type": "news", "articles": _articles(fields)}
    if msg_type in _MEDIA_REPLIES:
        media = fields.get(_MEDIA_REPLIES[msg_type])
        media = media if isinstance(media, dict) else {}
        return {"type": msg_type, "media_id": str(media.get("MediaId") or
                                                  media.get("ThumbMediaId") or "")}
    raise ValueError(f"unknown reply MsgType {str(msg_type)[:40]!r}")


def _decrypt_reply(sandbox, fields: dict) -> dict:
    if not sandbox.aes_key:
        raise ValueError("an encrypted reply, but the account has no EncodingAESKey")
    crypto = MessageCrypto(sandbox.token, sandbox.aes_key, sandbox.appid)
    try:
        # §3.6: MsgSignature covers the reply's own TimeStamp and Nonce.
        inner = crypto.decrypt_message(str(fields.get("MsgSignature", "")),
                                       str(fields.get("TimeStamp", "")),
                                       str(fields.get("Nonce", "")),
                                       str(fields.get("Encrypt", "")))
        return parse_xml(inner)
    except CryptoError as exc:
        raise ValueError(f"cannot decrypt the reply ({exc.reason})") from None
    except XmlError as exc:
        raise ValueError(f"the decrypted reply is not XML ({exc.reason})") from None


def _articles(fields: dict) -> list[dict]:
    articles = fields.get("Articles")
    items = articles.get("item") if isinstance(articles, dict) else None
    if isinstance(items, dict):
        items = [items]
    if not items:
        raise ValueError("a news reply without articles")
    if len(items) > 1:
        # §5.2: since 2018 a news reply may hold one article only (45008).
        raise ValueError("a news reply with more than one article (§5.2, 45008)")
    return [{"title": str(i.get("Title") or ""), "description": str(i.get("Description") or ""),
             "url": str(i.get("Url") or ""), "picurl": str(i.get("PicUrl") or "")}
            for i in items if isinstance(i, dict)]

