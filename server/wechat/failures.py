"""What a failed WeChat call means, in one sentence for an admin or a terminal."""

from __future__ import annotations

from server.wechat.client import WeChatError, WeChatUnavailable


def describe_failure(exc: Exception) -> str:
    """A sentence for an admin or the terminal: what WeChat said, never a token or a URL."""
    if isinstance(exc, WeChatError):
        hints = {
            40001: "the AppSecret or access_token is not valid (check WX_APPSECRET)",
            40013: "the AppID is not valid (check WX_APPID)",
            40125: "the AppSecret is not valid (check WX_APPSECRET)",
            40164: "this server's IP address is not in the account's IP whitelist",
            45009: "today's API quota is used up",
            48001: "this account may not use the menu API",
            89503: "an administrator must confirm this server's IP address in the console",
        }
        hint = hints.get(exc.errcode, exc.errmsg.split(" rid:")[0] or "no explanation")
        return f"微信拒绝了请求 / WeChat refused: errcode {exc.errcode} ({hint})"
    if isinstance(exc, WeChatUnavailable):
        return f"微信暂时无法访问 / WeChat could not be reached ({exc.reason}); please try again in a moment"
    return f"出错了 / failed: {type(exc).__name__}"
