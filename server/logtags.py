"""How a follower appears in logs: a stable tag that is not their openid."""

from __future__ import annotations

import hashlib


def short_openid(openid: str) -> str:
    """A follower's tag in logs: the same for every line about them, but not their openid.

    A hash and not a prefix: an account's openids share their first characters, and a full
    openid in a log is personal data (DESIGN.md, security by default).
    """
    return "u:" + hashlib.sha256(openid.encode("utf-8", "replace")).hexdigest()[:10]
