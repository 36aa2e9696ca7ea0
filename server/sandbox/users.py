"""The stand-in for the follower APIs: /cgi-bin/user/get and /cgi-bin/user/info/batchget (§14)."""

from __future__ import annotations

from .api import CgiHandler
from .population import BATCH


class UserGetHandler(CgiHandler):
    """GET /cgi-bin/user/get?next_openid=…: 10,000 openids a page (§14.1)."""

    def get(self) -> None:
        if not self.check_token():
            return
        answer = self.sandbox.population.page(self.arg("next_openid"))
        if "errcode" in answer:
            return self.wechat_error(answer["errcode"])
        self.answer(answer)


class BatchGetHandler(CgiHandler):
    """POST /cgi-bin/user/info/batchget: up to 100 followers' details (§14.3)."""

    def post(self) -> None:
        body = self.token_and_body()
        if body is None:
            return
        wanted = body.get("user_list")
        if not isinstance(wanted, list) or not wanted or len(wanted) > BATCH:
            return self.wechat_error(40032 if isinstance(wanted, list) and wanted else 47001)
        infos = []
        for item in wanted:
            openid = item.get("openid") if isinstance(item, dict) else None
            info = self.sandbox.population.info(openid) if isinstance(openid, str) else None
            if info is None:
                return self.wechat_error(40003)  # §14.3: every entry must be a follower of this account
            infos.append(info)
        self.answer({"user_info_list": infos})


default_handlers = [
    (r"/cgi-bin/user/get", UserGetHandler),
    (r"/cgi-bin/user/info/batchget", BatchGetHandler),
]
