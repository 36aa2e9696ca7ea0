"""SHA1 signatures of the WeChat callback (docs/wechat-protocol.md §1, §3.5) and the JS-SDK (§9)."""

from __future__ import annotations

import hashlib
import hmac
import secrets



def sign(*parts: str) -> str:
    """SHA1 hex of the parts sorted lexicographically and joined with no separator (§1, §3.5)."""
    # Sorting the values (not keys) is the rule of §1; for ASCII, str order equals byte order.
    joined = "".join(sorted(parts))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def _usable(*values: object) -> bool:
    """True when every value is a non-empty ASCII str (what WeChat ever sends us)."""
    return all(isinstance(v, str) and v and v.isascii() for v in values)


def _matches(expected: str, given: str) -> bool:
    # Constant-time compare so the response time leaks nothing about the right signature (CWE-208).
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii"))


def check_signature(
    token: str | None, signature: str | None, timestamp: str | None, nonce: str | None
) -> bool:
    """True when `signature` = sign(token, timestamp, nonce) (§1); else False, never an error."""
    if not _usable(token, signature, timestamp, nonce):
        return False
    return _matches(sign(token, timestamp, nonce), signature)  # type: ignore[arg-type]


def check_msg_signature(
    token: str | None,
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    encrypt: str | None,
) -> bool:
    """True when `msg_signature` = sign(token, timestamp, nonce, Encrypt) (§3.5); else False."""
    if not _usable(token, msg_signature, timestamp, nonce, encrypt):
        return False
    return _matches(sign(token, timestamp, nonce, encrypt), msg_signature)  # type: ignore[arg-type]


def jsapi_signature(jsapi_ticket: str, noncestr: str, timestamp: str, url: str) -> str:
    """The wx.config signature of §9: sha1 of the fields in name order, values not URL-escaped."""
    # §9: the page URL is signed without '#' and what follows it.
    page = url.split("#", 1)[0]
    string1 = f"jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(string1.encode("utf-8")).hexdigest()


def random_nonce(n: int = 16) -> str:
    """A random string of n ASCII letters and digits, from the `secrets` generator.

    Hex digits are letters and digits too; one token_hex call is ~10x cheaper than n calls of
    secrets.choice, and this runs for every encrypted reply.
    """
    return secrets.token_hex((n + 1) // 2)[:n]
