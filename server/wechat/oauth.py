"""The web-authorization (网页授权) authorize URL of docs/wechat-protocol.md §6.2; built only here."""

from __future__ import annotations

import re
from urllib.parse import quote

SCOPES = ("snsapi_base", "snsapi_userinfo")

# §6.2: state is a-zA-Z0-9 only, at most 128 bytes. \A...\Z rather than ^...$, because "$"
# also matches before a trailing newline and "abc\n" must not pass STATE_RE.match().
STATE_RE = re.compile(r"\A[a-zA-Z0-9]{1,128}\Z")


def authorize_url(open_base: str, appid: str, redirect_uri: str, scope: str, state: str) -> str:
    """The URL that starts web authorization, in the exact form WeChat's regex accepts (§6.2)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    return _connect_url(open_base, "oauth2/authorize", appid, redirect_uri, scope, state)


def qrconnect_url(open_base: str, appid: str, redirect_uri: str, state: str) -> str:
    """The website app's QR sign-in page (§16.1): scope snsapi_login, the same form as §6.2."""
    return _connect_url(open_base, "qrconnect", appid, redirect_uri, "snsapi_login", state)


def _connect_url(open_base: str, page: str, appid: str, redirect_uri: str, scope: str, state: str) -> str:
    if not isinstance(state, str) or not STATE_RE.match(state):
        raise ValueError("state must be 1 to 128 characters of a-z, A-Z, 0-9")
    if not appid:
        raise ValueError("appid is empty")
    if not redirect_uri.startswith(("https://", "http://")):
        raise ValueError("redirect_uri must be an absolute http(s) URL")
    # §6.2: WeChat matches the parameters in exactly this order, redirect_uri fully
    # percent-encoded, and needs the #wechat_redirect fragment even behind a 302.
    return (
        f"{open_base.rstrip('/')}/connect/{page}"
        f"?appid={quote(appid, safe='')}"
        f"&redirect_uri={quote(redirect_uri, safe='')}"
        f"&response_type=code"
        f"&scope={scope}"
        f"&state={state}"
        "#wechat_redirect"
    )
