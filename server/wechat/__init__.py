"""The WeChat protocol, free of Tornado and MongoDB: signatures, AES crypto, XML, authorize URLs."""

from .crypto import CryptoError, MessageCrypto, decode_aes_key
from .messages import MAX_BODY, Event, Message, XmlError, parse_message, parse_xml
from .oauth import SCOPES, STATE_RE, authorize_url
from .replies import SUCCESS, text_reply
from .signature import (
    check_msg_signature,
    check_signature,
    jsapi_signature,
    random_nonce,
    sign,
)

__all__ = [
    "MAX_BODY",
    "SCOPES",
    "STATE_RE",
    "SUCCESS",
    "CryptoError",
    "Event",
    "Message",
    "MessageCrypto",
    "XmlError",
    "authorize_url",
    "check_msg_signature",
    "check_signature",
    "decode_aes_key",
    "jsapi_signature",
    "parse_message",
    "parse_xml",
    "random_nonce",
    "sign",
    "text_reply",
]
