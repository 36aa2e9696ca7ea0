"""The stand-in for template messages: the account's templates, template/send, and the delivery event (§13)."""

from __future__ import annotations

import asyncio
import logging

from server.wechat.templates import KEY_RE, template_keys

from .api import CgiHandler
from .delivery import deliver

log = logging.getLogger("wxauth.sandbox")

def value_problem(key: str, value: str) -> bool:
    """§13.3's type checks for the types the demo templates use (a 47003 when one fails)."""
    if key.startswith("thing"):
        return len(value) > 20
    if key.startswith("time"):
        return not value or len(value) > 40
    return len(value) > 200


class TemplateListHandler(CgiHandler):
    """GET /cgi-bin/template/get_all_private_template (§13.5)."""

    def get(self) -> None:
        if not self.check_token():
            return
        self.answer({"template_list": self.sandbox.templates})


class TemplateSendHandler(CgiHandler):
    """POST /cgi-bin/message/template/send (§13.2): one message, deduplicated by client_msg_id."""

    def post(self) -> None:
        body = self.token_and_body()
        if body is None:
            return
        sandbox = self.sandbox
        template = next((t for t in sandbox.templates if t["template_id"] == body.get("template_id")), None)
        if template is None:
            return self.wechat_error(40037)
        touser = body.get("touser")
        follower = sandbox.follower(touser) if isinstance(touser, str) else None
        if follower is None and not (isinstance(touser, str) and sandbox.population.info(touser)):
            return self.wechat_error(40003)
        if follower is not None and not follower.subscribed:
            return self.wechat_error(43004)
        data = body.get("data")
        if not isinstance(data, dict):
            return self.wechat_error(47001)
        values = {}
        for key in template_keys(template["content"]):
            item = data.get(key)
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or value_problem(key, value):
                return self.wechat_error(47003, f"argument invalid! data.{key}.value invalid")
            values[key] = value
        msgid, fresh = sandbox.template_send(touser, body.get("client_msg_id"))
        self.answer({"errcode": 0, "errmsg": "ok", "msgid": msgid})
        if not fresh:
            return  # the same client_msg_id within 10 minutes: one message, the first msgid
        text = KEY_RE.sub(lambda m: values.get(m.group(1), ""), template["content"])
        if follower is not None:
            sandbox.record(touser, "account", {"type": "template", "title": template["title"],
                                               "content": text, "url": body.get("url") or ""})
        if sandbox.server_url and sandbox.template_events:
            # §13.4: the outcome comes back to the server as an event, a moment later.
            task = asyncio.get_running_loop().create_task(
                deliver(sandbox, touser, "event", [("Event", "TEMPLATESENDJOBFINISH"), ("MsgID", msgid),
                                                   ("Status", "success")]))
            sandbox.background.add(task)
            task.add_done_callback(sandbox.background.discard)


default_handlers = [
    (r"/cgi-bin/template/get_all_private_template", TemplateListHandler),
    (r"/cgi-bin/message/template/send", TemplateSendHandler),
]
