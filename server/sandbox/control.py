"""The sandbox's control API for tests and benchmarks (JSON; exists only on the sandbox app)."""

import tornado.web

from .base import SandboxHandler


class ControlHandler(SandboxHandler):
    """Bodies must be JSON (SandboxHandler.json_body), which keeps other sites' forms out."""


class CallsHandler(ControlHandler):
    """GET /_sandbox/calls: API calls so far, per path."""

    def get(self) -> None:
        self.write_json(dict(self.sandbox.calls))


class SettingsHandler(ControlHandler):
    """POST /_sandbox/control: {"latency", "token_ttl", "advance", "reply_timeout", "fail"}."""

    def post(self) -> None:
        try:
            self.sandbox.configure(self.json_body())
        except (TypeError, ValueError) as exc:
            raise tornado.web.HTTPError(400, "bad control body: %s" % exc) from None
        self.write_json(self.settings_view())

    def get(self) -> None:
        self.write_json(self.settings_view())

    def settings_view(self) -> dict:
        sandbox = self.sandbox
        return {"latency": sandbox.latency, "token_ttl": sandbox.token_ttl,
                "reply_timeout": sandbox.reply_timeout, "now": sandbox.now(),
                "faults": [vars(f) for f in sandbox.faults]}


class ResetHandler(ControlHandler):
    """POST /_sandbox/reset: back to the state right after start."""

    def post(self) -> None:
        self.sandbox.reset()
        self.write_json({"ok": True})


class CodesHandler(ControlHandler):
    """POST /_sandbox/codes {"openid", "scope"} -> {"code"}: a code without a browser."""

    def post(self) -> None:
        body = self.json_body()
        try:
            code = self.sandbox.mint_code(body.get("openid"), body.get("scope", "snsapi_base"))
        except KeyError:
            raise tornado.web.HTTPError(404, "no such follower") from None
        except ValueError as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None
        self.write_json({"code": code})


class FollowersHandler(ControlHandler):
    """GET lists the followers; POST {"openid"?, "nickname", ...} adds one."""

    def get(self) -> None:
        self.write_json({"followers": [f.public() for f in self.sandbox.followers.values()]})

    def post(self) -> None:
        body = self.json_body()
        fields = ("openid", "nickname", "headimgurl", "unionid", "is_snapshotuser", "subscribed")
        try:
            follower = self.sandbox.add_follower(**{k: body[k] for k in fields if k in body})
        except ValueError as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None
        self.write_json(follower.public(), 201)


class InboxHandler(ControlHandler):
    """GET /_sandbox/inbox?openid=&since=: a follower's conversation."""

    def get(self) -> None:
        since = self.since_argument()
        self.write_json({"entries": self.sandbox.inbox(self.get_query_argument("openid"), since)})


default_handlers = [
    (r"/_sandbox/calls", CallsHandler),
    (r"/_sandbox/control", SettingsHandler),
    (r"/_sandbox/reset", ResetHandler),
    (r"/_sandbox/codes", CodesHandler),
    (r"/_sandbox/followers", FollowersHandler),
    (r"/_sandbox/inbox", InboxHandler),
]
