"""Which browser a request comes from, by User-Agent (docs/wechat-protocol.md §17)."""

from __future__ import annotations

import re

# §17: every WeChat client's browser (iOS, Android, Windows and Mac WeChat) says MicroMessenger.
# WeCom (企业微信) says it too, but cannot do official-account web authorization: it is
# treated as any other browser, so its users get the scan page instead of a dead end.
_WECHAT = re.compile(r"MicroMessenger", re.IGNORECASE)
_WECOM = re.compile(r"wxwork", re.IGNORECASE)

_SYSTEMS = (("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"),
            ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Linux", "Linux"))
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
    system = next((name for marker, name in _SYSTEMS if marker in ua), "an unknown system")
    browser = next((name for marker, name in _BROWSERS if marker in ua), "a browser")
    return f"{browser} on {system}"
