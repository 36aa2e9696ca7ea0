"""make_app(config, services) -> tornado.web.Application: the settings dict and the route table."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import tornado.web

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Services:
    """Everything a handler or command may use, created once per process by server/runtime.py."""

    config: Any
    store: Any
    state_map: Any
    messages: Any
    wechat: Any = None       # server.wechat.client.WeChatClient
    auth: Any = None         # server.authorize.AuthService
    tokens: Any = None       # global access_token service
    tickets: Any = None      # server.tickets.TicketService: the JS-SDK's jsapi_ticket
    metrics: Any = None
    writes: Any = None       # server.userwrites.UserWrites
    scan_login: Any = None   # server.scanlogin.ScanLoginService
    entry_codes: Any = None  # server.entrycodes.EntryCodes
    admin_auth: Any = None   # server.admin_auth.AdminAuth
    admins: Any = None       # server.admins.AdminAccounts: named admins, roles, invitations
    menus: Any = None        # server.menus.MenuService
    state_entries: Any = None  # server.state_entries.StateEntries: every change to the map
    reply_texts: Any = None  # server.replytexts.ReplyTexts
    followers: Any = None    # server.followers.FollowerSync
    notifications: Any = None  # server.notify.Notifications
    funnel: Any = None       # server.funnel.Funnel
    extra: dict = dataclasses.field(default_factory=dict)


def make_app(config, services: Services, **overrides) -> tornado.web.Application:
    from handlers import default_handlers
    from handlers.base import Inflight, NotFoundHandler, StaticHandler, log_request, page_csp

    settings = dict(
        cookie_secret=config.cookie_secret,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Lax", "secure": config.https},
        template_path=os.path.join(ROOT, "templates"),
        static_path=os.path.join(ROOT, "static"),
        static_url_prefix="/static/",
        static_handler_class=StaticHandler,
        default_handler_class=NotFoundHandler,
        compress_response=False,
        log_function=log_request,
        wx_config=config,
        wx_services=services,
        wx_page_csp=page_csp(config),
        wx_share_csp=page_csp(config, share=True),
    )
    settings.update(overrides)
    app = tornado.web.Application(default_handlers(), **settings)
    app.wx_inflight = Inflight()
    return app
