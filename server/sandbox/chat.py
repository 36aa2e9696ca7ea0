"""The follower's chat page: talk to the official account as a chosen follower."""

import tornado.web

from .base import FOLLOWER_COOKIE, SandboxHandler
from .demo import PHONE_COOKIE

_EVENTS = ("subscribe", "unsubscribe", "CLICK", "VIEW")
_MAX_TEXT = 2000  # characters; WeChat's input box stops long before 64 KiB bodies


class ChatPageHandler(SandboxHandler):
    """GET / and /chat: the page; everything else comes from chat.js through JSON."""

    def get(self) -> None:
        # This tab is the follower's phone from now on: links open as inside WeChat.
        self.set_cookie(PHONE_COOKIE, "1", samesite="Lax")
        self.render("chat.html", sandbox=self.sandbox)


class ChatStateHandler(SandboxHandler):
    """GET /chat/state: who this browser is, the followers to pick from, and the menu."""

    def get(self) -> None:
        self.write_json(self.state())

    def state(self) -> dict:
        sandbox = self.sandbox
        follower = self.current_follower()
        mode = "plaintext"
        if sandbox.aes_key:
            mode = sandbox.encrypt_mode
        return {
            "app_name": sandbox.app_name,
            "original_id": sandbox.original_id,
            "follower": {**follower.public(), "avatar": self.absolute(follower.headimgurl)},
            "followers": [{"openid": f.openid, "nickname": f.nickname}
                          for f in sandbox.followers.values()],
            # Only what was published through /cgi-bin/menu/create, as on a real phone.
            "menu": sandbox.menu,
            "server_url": sandbox.server_url or "",
            "mode": mode,
        }


class ChatFollowerHandler(ChatStateHandler):
    """POST /chat/follower {"openid"}: act as another follower (a cookie on this origin)."""

    def post(self) -> None:
        openid = self.json_body().get("openid")
        follower = self.sandbox.follower(openid if isinstance(openid, str) else None)
        if follower is None:
            raise tornado.web.HTTPError(404, "no such follower")
        # It names a demo user and is no credential; chat.js never reads it, hence HttpOnly.
        self.set_cookie(FOLLOWER_COOKIE, follower.openid, httponly=True, samesite="Lax")
        self._follower = follower
        self.write_json(self.state())

    def current_follower(self):
        return getattr(self, "_follower", None) or super().current_follower()


class ChatSendHandler(SandboxHandler):
    """POST /chat/send {"type": "text", "content"} or {"type": "event", "event", "key"}."""

    async def post(self) -> None:
        body = self.json_body()
        follower = self.current_follower()
        if body.get("type") == "text":
            content = body.get("content")
            if not isinstance(content, str) or not content.strip():
                raise tornado.web.HTTPError(400, "content must be a non-empty string")
            if not follower.subscribed:
                # WeChat has no input box for an account you do not follow.
                raise tornado.web.HTTPError(409, "follow the account first")
            result = await self.sandbox.send_text(follower.openid, content[:_MAX_TEXT])
        elif body.get("type") == "event":
            event, key = body.get("event"), body.get("key")
            if event not in _EVENTS or not (key is None or isinstance(key, str)):
                raise tornado.web.HTTPError(400, "event must be one of %s" % ", ".join(_EVENTS))
            result = await self.sandbox.send_event(follower.openid, event, key)
        else:
            raise tornado.web.HTTPError(400, "type must be text or event")
        result["subscribed"] = follower.subscribed
        self.write_json(result)


class ScanCodeHandler(SandboxHandler):
    """GET /q/<id>: what a parametric code encodes; opening it is the current follower scanning it."""

    async def get(self, code_id: str) -> None:
        result = await self.sandbox.scan_qr_code(self.current_follower().openid, code_id)
        if result is None:
            raise tornado.web.HTTPError(404, "no such code")
        self.redirect("/chat")  # the phone shows the chat, with the account's answer in it


class ChatInboxHandler(SandboxHandler):
    """GET /chat/inbox?since=ID: this follower's conversation after entry ID."""

    def get(self) -> None:
        since = self.since_argument()
        follower = self.current_follower()
        self.write_json({"openid": follower.openid, "subscribed": follower.subscribed,
                         "entries": self.sandbox.inbox(follower.openid, since)})


default_handlers = [
    (r"/", ChatPageHandler),
    (r"/chat", ChatPageHandler),
    (r"/chat/state", ChatStateHandler),
    (r"/chat/follower", ChatFollowerHandler),
    (r"/chat/send", ChatSendHandler),
    (r"/chat/inbox", ChatInboxHandler),
    (r"/q/([A-Za-z0-9_-]{1,32})", ScanCodeHandler),
]
