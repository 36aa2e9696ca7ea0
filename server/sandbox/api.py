"""The stand-in for the cgi-bin/ APIs: global tokens, menus, customer-service text (§8), JS-SDK tickets (§9)."""

import copy
import json
import re

from .base import ApiHandler

# §8.3: the documented button types, and which of them need a key or a url.
MENU_TYPES = frozenset({
    "click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
    "pic_weixin", "location_select", "media_id", "view_limited", "miniprogram", "article_id",
    "article_view_limited"})
KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
                       "pic_photo_or_album", "pic_weixin", "location_select"})
URL_TYPES = frozenset({"view", "miniprogram"})

# §7 40033: a \uXXXX escape (not an escaped backslash followed by "u") in the raw body.
_UNICODE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[0-9a-fA-F]{4}")


def _size(value) -> int | None:
    """UTF-8 byte length of a string value, None when it is not a non-empty string."""
    return len(value.encode("utf-8")) if isinstance(value, str) and value else None


def _check_leaf(button, sub: bool) -> int | None:
    # §8.3: top-level name <= 16 bytes, sub-menu name <= 60, key <= 128, url <= 1024.
    # Error codes: 40017-40020 for top-level buttons, 40024-40027 for sub-buttons.
    type_code, name_code, key_code, url_code = ((40024, 40025, 40026, 40027) if sub
                                                else (40017, 40018, 40019, 40020))
    if not isinstance(button, dict):
        return type_code
    size = _size(button.get("name"))
    if size is None or size > (60 if sub else 16):
        return name_code
    kind = button.get("type")
    if kind not in MENU_TYPES:
        return type_code
    if kind in KEY_TYPES:
        size = _size(button.get("key"))
        if size is None or size > 128:
            return key_code
    if kind in URL_TYPES:
        url = button.get("url")
        size = _size(url)
        if size is None or size > 1024 or not url.startswith(("http://", "https://")):
            return url_code
    return None


def validate_menu(menu) -> int | None:
    """The errcode /cgi-bin/menu/create gives for `menu`, or None when it is valid (§8.3)."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    for button in buttons:
        subs = button.get("sub_button") if isinstance(button, dict) else None
        if not subs:
            # A leaf; menu/get answers leaves with "sub_button": [], so [] means leaf too.
            error = _check_leaf(button, sub=False)
        elif not isinstance(subs, list) or len(subs) > 5:
            error = 40023
        else:
            size = _size(button.get("name"))
            error = 40018 if size is None or size > 16 else None
            for sub in subs:
                error = error or _check_leaf(sub, sub=True)
        if error:
            return error
    return None


def published_menu(menu: dict) -> dict:
    """The menu as /cgi-bin/menu/get shows it: every leaf carries an empty sub_button."""
    shown = copy.deepcopy(menu)
    for button in shown["button"]:
        for leaf in button.get("sub_button") or [button]:
            leaf.setdefault("sub_button", [])
    return {"button": shown["button"]}


class CgiHandler(ApiHandler):
    def check_token(self) -> bool:
        errcode, _ = self.sandbox.check_global_token(self.arg("access_token"))
        if errcode:
            self.wechat_error(errcode)
            return False
        return True

    def token_and_body(self) -> dict | None:
        """The JSON body of a call that needs the global token; None after answering the error."""
        return self.body() if self.check_token() else None

    def body(self) -> dict | None:
        """The JSON body, or None after answering 40033 / 47001."""
        raw = self.request.body
        if _UNICODE_ESCAPE.search(raw):
            self.wechat_error(40033)
            return None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            self.wechat_error(47001)
            return None
        return body

    def check_credentials(self, grant_type, appid, secret) -> bool:
        if grant_type != "client_credential":
            self.wechat_error(40002)
        elif appid != self.sandbox.appid:
            self.wechat_error(40013)
        elif secret != self.sandbox.secret:
            # Older docs list 40001 for a wrong AppSecret here (§7); WeChat now says 40125.
            self.wechat_error(40125)
        else:
            return True
        return False


class TokenHandler(CgiHandler):
    """GET /cgi-bin/token: every call issues a new token and kills the previous (§8.1)."""

    def get(self) -> None:
        if self.check_credentials(self.arg("grant_type"), self.arg("appid"), self.arg("secret")):
            token = self.sandbox.issue_global_token("token")
            self.answer({"access_token": token.value, "expires_in": self.sandbox.token_ttl})


class StableTokenHandler(CgiHandler):
    """POST /cgi-bin/stable_token: the same token while valid unless forced (§8.2)."""

    def post(self) -> None:
        body = self.body()
        if body is None:
            return
        if not self.check_credentials(body.get("grant_type"), body.get("appid"),
                                      body.get("secret")):
            return
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return self.wechat_error(47001)
        token = self.sandbox.issue_global_token("stable", force=force)
        remaining = round(token.expires_at - self.sandbox.now())
        self.answer({"access_token": token.value, "expires_in": remaining})


class MenuCreateHandler(CgiHandler):
    """POST /cgi-bin/menu/create (§8.3)."""

    def post(self) -> None:
        if not self.check_token():
            return
        menu = self.body()
        if menu is None:
            return
        error = validate_menu(menu)
        if error:
            return self.wechat_error(error)
        self.sandbox.menu = {"button": copy.deepcopy(menu["button"])}
        self.ok()


class MenuGetHandler(CgiHandler):
    """GET /cgi-bin/menu/get: the last created menu, 46003 when there is none."""

    def get(self) -> None:
        if not self.check_token():
            return
        if self.sandbox.menu is None:
            return self.wechat_error(46003)
        self.answer({"menu": published_menu(self.sandbox.menu)})


class MenuDeleteHandler(CgiHandler):
    """GET /cgi-bin/menu/delete."""

    def get(self) -> None:
        if self.check_token():
            self.sandbox.menu = None
            self.ok()


class CustomSendHandler(CgiHandler):
    """POST /cgi-bin/message/custom/send: text only; the follower's chat page shows it (§8.4)."""

    def post(self) -> None:
        body = self.token_and_body()
        if body is None:
            return
        if body.get("msgtype") != "text":
            return self.wechat_error(40008)
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            return self.wechat_error(44004)
        follower = self.sandbox.follower(body.get("touser"))
        if follower is None:
            return self.wechat_error(40003)
        if not follower.subscribed:
            # §8.4: only followers who interacted may be sent to (45015 outside the window).
            return self.wechat_error(45015)
        self.sandbox.record(follower.openid, "account",
                            {"type": "text", "content": content, "via": "custom"})
        self.ok()


class QrcodeCreateHandler(CgiHandler):
    """POST /cgi-bin/qrcode/create: parametric codes; a permanent scene keeps its code (§12.1)."""

    def post(self) -> None:
        body = self.token_and_body()
        if body is None:
            return
        action = body.get("action_name")
        scene = ((body.get("action_info") or {}).get("scene") or {}) if isinstance(body.get("action_info"), dict) else {}
        value = scene.get("scene_str") if action in ("QR_LIMIT_STR_SCENE", "QR_STR_SCENE") else scene.get("scene_id")
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            return self.wechat_error(40097)  # §12.4: invalid arguments
        if isinstance(value, str):
            valid = 1 <= len(value) <= 64
        else:
            valid = isinstance(value, int) and not isinstance(value, bool) and (
                1 <= value <= 100_000 if action == "QR_LIMIT_SCENE" else value != 0)
        if not valid:
            return self.wechat_error(40097)
        code = self.sandbox.create_qr_code(str(value), permanent=action.startswith("QR_LIMIT"))
        answer = {"ticket": code["ticket"], "url": f"{self.absolute('/q/' + code['id'])}"}
        if not action.startswith("QR_LIMIT"):
            answer["expire_seconds"] = body.get("expire_seconds") or 60
        self.answer(answer)


class ShowQrcodeHandler(CgiHandler):
    """GET /cgi-bin/showqrcode?ticket=…: the code's image, 404 for an unknown ticket (§12.2)."""

    def get(self) -> None:
        from server.qrimage import qr_png

        code = self.sandbox.qr_by_ticket(self.arg("ticket") or "")
        if code is None:
            self.set_status(404)
            self.finish()
            return
        self.set_header("Content-Type", "image/png")
        self.finish(qr_png(self.absolute("/q/" + code["id"])))


class GetTicketHandler(CgiHandler):
    """GET /cgi-bin/ticket/getticket?access_token=…&type=jsapi: the JS-SDK's ticket (§9, §15.2)."""

    def get(self) -> None:
        if not self.check_token():
            return
        kind = self.arg("type")
        if kind not in ("jsapi", "wx_card"):
            return self.wechat_error(40097)  # invalid arguments
        ticket = self.sandbox.issue_ticket(kind)
        self.answer({"errcode": 0, "errmsg": "ok", "ticket": ticket.value,
                     "expires_in": round(ticket.expires_at - self.sandbox.now())})


default_handlers = [
    (r"/cgi-bin/token", TokenHandler),
    (r"/cgi-bin/stable_token", StableTokenHandler),
    (r"/cgi-bin/menu/create", MenuCreateHandler),
    (r"/cgi-bin/menu/get", MenuGetHandler),
    (r"/cgi-bin/menu/delete", MenuDeleteHandler),
    (r"/cgi-bin/message/custom/send", CustomSendHandler),
    (r"/cgi-bin/qrcode/create", QrcodeCreateHandler),
    (r"/cgi-bin/showqrcode", ShowQrcodeHandler),
    (r"/cgi-bin/ticket/getticket", GetTicketHandler),
]
