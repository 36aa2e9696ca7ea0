"""Builds each process's services once (MongoDB client, HTTP session, caches, admin) and closes them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from server.admin_auth import AdminAuth
from server.admins import AdminAccounts
from server.app import Services
from server.authorize import AuthService
from server.entrycodes import EntryCodes
from server.followers import FollowerSync
from server.funnel import Funnel
from server.notify import Notifications
from server.menus import MenuService
from server.messaging import MessageService
from server.metrics import Metrics
from server.replytexts import ReplyTexts
from server.scanlogin import ScanLoginService
from server.state_entries import StateEntries
from server.statemap import StateMap
from server.store import Store, make_client
from server.tickets import TicketService
from server.tokens import TokenService
from server.userwrites import UserWrites
from server.wechat.client import WeChatClient
from server.wechat.crypto import MessageCrypto

log = logging.getLogger("wxauth")

WECHAT_TIMEOUT = 4.5  # a follower sees an answer within 6 s even when WeChat hangs


async def open_services(config, mongodb_uri: str, *, start_background: bool = True, wechat_timeout: float = WECHAT_TIMEOUT) -> Services:
    """Everything a process needs; call it inside the running event loop, after any fork."""
    client = make_client(mongodb_uri)
    store = Store(client, config.db_name)
    indexes_task = None
    try:
        await store.ensure_indexes()
    except Exception as exc:
        # Start anyway: replies work from the (empty) cache and /readyz reports the problem.
        log.warning("could not create indexes yet (%s); will serve and retry in the background", type(exc).__name__)
        indexes_task = asyncio.get_running_loop().create_task(_ensure_indexes_later(store))
    metrics = Metrics()
    state_map = StateMap(store)
    await state_map.refresh()
    crypto = (MessageCrypto(config.token, config.aes_key, config.appid, previous_key=config.aes_key_previous)
              if config.aes_key else None)
    writes = UserWrites(metrics)
    funnel = Funnel(store, state_map)
    session = _http_session(wechat_timeout, "wxauth")
    wechat = WeChatClient(session, config.api_base, config.appid, config.appsecret, timeout=wechat_timeout,
                          on_call=metrics.wechat_call)
    # The Open Platform website app (WX_WEB_APPID): PC browsers sign in with snsapi_login.
    web_wechat = (WeChatClient(session, config.api_base, config.web_appid, config.web_appsecret, timeout=wechat_timeout,
                               on_call=metrics.wechat_call) if config.web_appid else None)
    services = Services(
        config=config,
        store=store,
        state_map=state_map,
        messages=MessageService(config, store, state_map, crypto, metrics, writes=writes, funnel=funnel),
        wechat=wechat,
        metrics=metrics,
    )
    services.auth = AuthService(config, store, wechat, state_map, metrics, writes=writes, web_wechat=web_wechat,
                                funnel=funnel)
    services.funnel = funnel
    services.writes = writes
    services.scan_login = ScanLoginService(store, metrics)
    _add_account_services(services)
    # Only serving processes sign wx.config for pages (handlers/jssdk.py, WxPageHandler.share_card).
    services.tickets = TicketService(store, wechat, services.tokens, config.appid)
    services.admin_auth = AdminAuth(config, store, services.admins)
    services.extra["http_session"] = session
    services.extra["mongo_client"] = client
    services.extra["indexes_task"] = indexes_task
    writes.start()  # not optional like the refresh below: without it no follower write lands
    funnel.start()
    if start_background:
        state_map.start()
        services.notifications.start_runner()
        if config.sync_followers_hours:
            services.followers.start_periodic(config.sync_followers_hours * 3600.0)
        if services.admin_auth.password_configured:
            # Hash a plain password now, so the first sign-in does not wait for it.
            services.admin_auth.prepare_task = asyncio.get_running_loop().create_task(services.admin_auth.prepare())
    return services


def _http_session(timeout: float, agent: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                 connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300),
                                 headers={"User-Agent": agent})


def _add_account_services(services: Services) -> None:
    """The services a server process and a command share: token, menu, entry codes, map, replies, admins."""
    config, store = services.config, services.store
    services.admins = AdminAccounts(config, store)
    services.tokens = TokenService(store, services.wechat, config.appid)
    services.menus = MenuService(config, store, services.wechat, services.tokens)
    services.entry_codes = EntryCodes(config, store, services.wechat, services.tokens)
    services.state_entries = StateEntries(config, store, services.state_map)
    services.reply_texts = ReplyTexts(store, services.state_map)
    services.followers = FollowerSync(store, services.wechat, services.tokens)
    services.notifications = Notifications(config, store, services.wechat, services.tokens)


@contextlib.asynccontextmanager
async def command_services(config, store, wechat_timeout: float = 10.0):
    """The services of one `python -m server <command>`: no cache (state_map is None, the serving
    processes pick changes up within their refresh), and a WeChat client of its own."""
    session = _http_session(wechat_timeout, "wxauth-cli")
    try:
        wechat = WeChatClient(session, config.api_base, config.appid, config.appsecret, timeout=wechat_timeout)
        services = Services(config=config, store=store, state_map=None, messages=None, wechat=wechat)
        services.funnel = Funnel(store)  # read only: `stats`
        _add_account_services(services)
        yield services
    finally:
        await session.close()


async def _ensure_indexes_later(store, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await store.ensure_indexes()
            log.info("indexes created")
            return
        except Exception as exc:
            log.warning("still cannot create indexes: %s", type(exc).__name__)


async def close_services(services: Services) -> None:
    task = services.extra.get("indexes_task")
    if task is not None:
        task.cancel()
    await services.state_map.stop()
    if services.funnel is not None:
        await services.funnel.stop()  # the last counts are written
    if services.scan_login is not None:
        await services.scan_login.stop()
    if services.writes is not None:
        await services.writes.stop()
    if services.followers is not None:
        await services.followers.stop()
    if services.notifications is not None:
        await services.notifications.stop()
    task = getattr(services.admin_auth, "prepare_task", None)
    if task is not None and not task.done():
        task.cancel()
    session = services.extra.get("http_session")
    if session is not None:
        await session.close()
    client = services.extra.get("mongo_client")
    if client is not None:
        await client.close()
