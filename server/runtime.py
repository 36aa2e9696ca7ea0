"""Creates each process's services (MongoDB client, HTTP session, caches) and closes them in order."""

from __future__ import annotations

import logging

import aiohttp

from server.app import Services
from server.authorize import AuthService
from server.messaging import MessageService
from server.statemap import StateMap
from server.store import Store, make_client
from server.wechat.client import WeChatClient
from server.wechat.crypto import MessageCrypto

log = logging.getLogger("wxauth")

WECHAT_TIMEOUT = 4.5  # a follower sees an answer within 6 s even when WeChat hangs


async def open_services(config, mongodb_uri: str, *, start_background: bool = True, wechat_timeout: float = WECHAT_TIMEOUT) -> Services:
    """Everything a process needs; call it inside the running event loop, after any fork."""
    client = make_client(mongodb_uri)
    store = Store(client, config.db_name)
    try:
        await store.ensure_indexes()
    except Exception as exc:
        # Start anyway: replies work from the (empty) cache and /readyz reports the problem.
        log.warning("could not create indexes yet (%s); will serve and retry in the background", type(exc).__name__)
    state_map = StateMap(store)
    await state_map.refresh()
    crypto = MessageCrypto(config.token, config.aes_key, config.appid) if config.aes_key else None
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=wechat_timeout),
        connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300),
        headers={"User-Agent": "wxauth"},
    )
    wechat = WeChatClient(session, config.api_base, config.appid, config.appsecret, timeout=wechat_timeout)
    services = Services(
        config=config,
        store=store,
        state_map=state_map,
        messages=MessageService(config, store, state_map, crypto),
        wechat=wechat,
    )
    services.auth = AuthService(config, store, wechat, state_map)
    services.extra["http_session"] = session
    services.extra["mongo_client"] = client
    if start_background:
        state_map.start()
    return services


async def close_services(services: Services) -> None:
    await services.state_map.stop()
    session = services.extra.get("http_session")
    if session is not None:
        await session.close()
    client = services.extra.get("mongo_client")
    if client is not None:
        await client.close()
