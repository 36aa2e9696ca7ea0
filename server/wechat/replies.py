"""Passive reply XML (docs/wechat-protocol.md §5): the text reply, strings in CDATA."""

from __future__ import annotations

from .messages import strip_invalid_xml_chars

# §5.1: the body that tells WeChat "no reply, do not retry".
SUCCESS = "success"


def cdata(value: str) -> str:
    """`value` as one or more CDATA sections that always form valid XML 1.0.

    "]]>" would close the section early, so it is split across two sections; characters
    XML forbids are dropped, since one of them makes WeChat refuse the whole reply (§5.1).
    """
    text = strip_invalid_xml_chars(str(value))
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _header(to_user: str, from_user: str, create_time: int, msg_type: str) -> str:
    # §5.1: ToUserName is the follower's OpenID, FromUserName the account's gh_ id.
    return (
        f"<ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time:d}</CreateTime>"
        f"<MsgType>{cdata(msg_type)}</MsgType>"
    )


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A text reply (§5.2); CreateTime is a bare integer, every string is CDATA."""
    header = _header(to_user, from_user, create_time, "text")
    return f"<xml>{header}<Content>{cdata(content)}</Content></xml>"
