"""What a failed WeChat call means, in one sentence for an admin or a terminal."""

from __future__ import annotations

from server.i18n import T, Text
from server.wechat.client import WeChatError, WeChatUnavailable

# What an errcode means for whoever runs the account (WeChat's own errmsg otherwise, as it is).
HINTS = {
    40001: T("the AppSecret or access_token is not valid (check WX_APPSECRET)"),
    40013: T("the AppID is not valid (check WX_APPID)"),
    40125: T("the AppSecret is not valid (check WX_APPSECRET)"),
    40164: T("this server's IP address is not in the account's IP whitelist"),
    45009: T("today's API quota is used up"),
    48001: T("this account may not use the menu API"),
    89503: T("an administrator must confirm this server's IP address in the console"),
}


def describe_failure(exc: Exception) -> Text:
    """A sentence for an admin or the terminal: what WeChat said, never a token or a URL. A Text:
    a page renders it with say(), a command with i18n.say(text, i18n.command_locale()); str() is English."""
    if isinstance(exc, WeChatError):
        hint = HINTS.get(exc.errcode) or exc.errmsg.split(" rid:")[0] or T("no explanation")
        return T("WeChat refused: errcode %(errcode)s (%(hint)s)", errcode=exc.errcode, hint=hint)
    if isinstance(exc, WeChatUnavailable):
        return T("WeChat could not be reached (%(reason)s); please try again in a moment", reason=exc.reason)
    return T("failed: %(error)s", error=type(exc).__name__)
