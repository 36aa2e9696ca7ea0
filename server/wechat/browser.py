"""Which browser a request comes from, by User-Agent (docs/wechat-protocol.md §17)."""

from __future__ import annotations

import re

from server.i18n import T, Text

# §17: every WeChat client's browser (iOS, Android, Windows and Mac WeChat) says MicroMessenger.
# WeCom (企业微信) says it too, but cannot do official-account web authorization: it is
# treated as any other browser, so its users get the scan page instead of a dead end.
_WECHAT = re.compile(r"MicroMessenger", re.IGNORECASE)
_WECOM = re.compile(r"wxwork", re.IGNORECASE)

_SYSTEMS = (("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"),
            ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Linux", "Linux"))
_UNKNOWN_BROWSER, _UNKNOWN_SYSTEM = "a browser", "an unknown system"
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))


def is_wechat(user_agent: str | None) -> bool:
    """True inside WeChat's own browser, where official-account web authorization works (§17)."""
    ua = user_agent or ""
    return bool(_WECHAT.search(ua)) and not _WECOM.search(ua)


def describe(user_agent: str | None) -> str:
    """A coarse, fixed-vocabulary name such as "Chrome on Windows", to show on a confirm page.

    Only words from the lists above come out, never text from the header: the phone shows it to
    a person deciding whether to sign a computer in, and an attacker controls that header.
    """
    ua = user_agent or ""
    system = next((name for marker, name in _SYSTEMS if marker in ua), _UNKNOWN_SYSTEM)
    browser = next((name for marker, name in _BROWSERS if marker in ua), _UNKNOWN_BROWSER)
    return f"{browser} on {system}"


def described_text(described: str | None) -> Text | str:
    """describe()'s English (as stored with a scan code) as words for a page in the reader's
    language: "Chrome on Windows" is T("%(browser)s on %(system)s"); product names stay as they are."""
    browser, on, system = (described or "").partition(" on ")
    if not on:
        return described or ""
    unknown = {_UNKNOWN_BROWSER: T("a browser"), _UNKNOWN_SYSTEM: T("an unknown system")}
    return T("%(browser)s on %(system)s", browser=unknown.get(browser, browser), system=unknown.get(system, system))
