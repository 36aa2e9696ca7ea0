"""Shared fixtures: the real embedded MongoDB-compatible server (or MONGODB_URI), the WeChat stand-in
on a real port, a configured app, and a cookie-keeping browser-like HTTP client."""

from __future__ import annotations

import os
import sys
import uuid
from urllib.parse import urljoin

import aiohttp
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import wxconfig  # noqa: E402
from server.embedded import EmbeddedMongo, free_port  # noqa: E402

from server.sandbox.testkit import (AES_KEY, APPID, COOKIE_SECRET, DESKTOP_UA, ORIGINAL_ID, SECRET,  # noqa: E402,F401
                                    TOKEN, WECHAT_UA)

OUTPUT_DIR = os.path.join(ROOT, "test-output")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    """A real MongoDB if MONGODB_URI is set, else one embedded nx-27017 server for the whole run."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    embedded = EmbeddedMongo(str(tmp_path_factory.mktemp("mongo")))
    yield embedded.start()
    embedded.stop()


@pytest.fixture
def db_name(mongo_uri):
    """A fresh database per test: tests never see each other's data. On a real MongoDB
    (MONGODB_URI set) it is dropped afterwards; the embedded one lives in a temporary folder."""
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    if os.environ.get("MONGODB_URI"):
        from pymongo import MongoClient

        with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(name)


def make_env(app_port: int, wechat_port: int, db: str, **extra) -> dict:
    env = {
        "WX_APPID": APPID,
        "WX_APPSECRET": SECRET,
        "WX_TOKEN": TOKEN,
        "WX_AES_KEY": AES_KEY,
        "WX_COOKIE_SECRET": COOKIE_SECRET,
        "WX_APP_HOST": f"http://127.0.0.1:{app_port}",
        "WX_PORT": str(app_port),
        "WX_API_BASE": f"http://127.0.0.1:{wechat_port}",
        "WX_OPEN_BASE": f"http://127.0.0.1:{wechat_port}",
        "WX_DB_NAME": db,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def wechat_port():
    return free_port()


@pytest.fixture
def env_overrides():
    """Tests override settings with @pytest.mark.parametrize('env_overrides', [{...}]) or a fixture."""
    return {}


@pytest.fixture
def config(http_port, wechat_port, db_name, env_overrides, mongo_uri):
    env = make_env(http_port, wechat_port, db_name, MONGODB_URI=mongo_uri, **env_overrides)
    return wxconfig.load(env)


@pytest.fixture
def sandbox(io_loop, config, wechat_port):
    """The WeChat stand-in on its own real port, sharing the app's credentials."""
    from server.sandbox import Sandbox, start_sandbox, stop_sandbox

    sb = Sandbox(config.appid, config.appsecret, config.token, original_id=ORIGINAL_ID,
                 aes_key=config.aes_key, server_url=config.app_host)
    server, _port = io_loop.run_sync(lambda: start_sandbox(sb, port=wechat_port))
    yield sb
    io_loop.run_sync(lambda: stop_sandbox(server))


@pytest.fixture
def services(io_loop, config, mongo_uri):
    from server.runtime import close_services, open_services

    svc = io_loop.run_sync(lambda: open_services(config, mongo_uri, start_background=False, wechat_timeout=2.0))
    yield svc
    io_loop.run_sync(lambda: close_services(svc))


@pytest.fixture
def app(config, services):
    from server.app import make_app

    return make_app(config, services)


@pytest.fixture
def app_url(http_server, http_port):
    """The app's base URL; requesting it starts pytest-tornado's server for the `app` fixture."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def url(app_url):
    """The same, for test files whose `app` is something else (the stand-in's own tests)."""
    return app_url


class Browser:
    """A cookie-keeping client that follows redirects hop by hop, across the app and the stand-in."""

    def __init__(self, user_agent: str = WECHAT_UA):
        # A follower's phone by default: outside WeChat, links lead to the scan page instead.
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             headers={"User-Agent": user_agent})
        self.hops: list[str] = []

    async def get(self, url: str, follow: bool = True, max_hops: int = 10, **kwargs):
        return await self.request("GET", url, follow=follow, max_hops=max_hops, **kwargs)

    async def post(self, url: str, follow: bool = True, **kwargs):
        return await self.request("POST", url, follow=follow, **kwargs)

    async def request(self, method: str, url: str, follow: bool = True, max_hops: int = 10, **kwargs):
        self.hops = [url]
        response = await self._one(method, url, **kwargs)
        while follow and response.status in (301, 302, 303, 307) and len(self.hops) <= max_hops:
            url = urljoin(str(response.url), response.headers["Location"]).split("#", 1)[0]
            self.hops.append(url)
            response = await self._one("GET", url)
        return response

    async def _one(self, method: str, url: str, **kwargs):
        async with self.session.request(method, url, allow_redirects=False, **kwargs) as response:
            response.body_bytes = await response.read()  # images too, not only pages
            response.text_body = response.body_bytes.decode(response.charset or "utf-8", "replace")
            return response

    def cookie(self, name: str) -> str | None:
        for morsel in self.session.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None

    async def close(self):
        await self.session.close()


@pytest.fixture
def browser(io_loop):
    client = io_loop.run_sync(_make_browser)
    yield client
    io_loop.run_sync(client.close)


async def _make_browser():
    return Browser()


@pytest.fixture(scope="module")
def chromium():
    """One Debian Chromium under Playwright for a module's browser tests (fails under CI without it)."""
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def output_dir():
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    return OUTPUT_DIR


# ---- admin, tokens and real server processes (tests/test_admin_*.py, test_tokens.py, test_menu.py) ----

ADMIN_PASSWORD = "correct horse battery staple"


class FakeClock:
    """An injectable clock (Unix seconds) that tests move forward instead of sleeping."""

    def __init__(self, start: float | None = None):
        import time

        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock():
    return FakeClock()


@pytest.fixture
def server_processes():
    """Launches `python -m server` processes on request (not waiting for them: call wait_ready or
    wait_ready_async); stops every one of them afterwards."""
    from procs import ServerProcess, clean_env

    started: list = []

    def start(env: dict, port: int | None = None, args: tuple[str, ...] = ()):
        proc = ServerProcess(clean_env(**env), args, port=port or free_port()).launch()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class AdminClient:
    """Signs in to /admin with the cookie-keeping Browser and posts forms with their xsrf token."""

    XSRF_RE = __import__("re").compile(r'name="_xsrf" value="([^"]+)"')

    def __init__(self, browser: Browser, base: str):
        self.browser = browser
        self.base = base
        self.token: str | None = None

    async def xsrf(self) -> str:
        if self.token is None:
            page = await self.browser.get(self.base + "/admin/login", follow=False)
            if page.status == 302:  # already signed in: any admin form carries the token
                page = await self.browser.get(self.base + "/admin/states")
            self.token = self.XSRF_RE.search(page.text_body).group(1)
        return self.token

    async def login(self, password: str = ADMIN_PASSWORD, **extra):
        token = await self.xsrf()
        return await self.browser.post(self.base + "/admin/login", follow=False,
                                       data={"_xsrf": token, "password": password, **extra})

    async def get(self, path: str, follow: bool = False):
        return await self.browser.get(self.base + path, follow=follow)

    async def post(self, path: str, data: dict | list | None = None, follow: bool = False, xsrf: bool = True):
        items = list(data.items()) if isinstance(data, dict) else list(data or [])
        if xsrf:
            items.append(("_xsrf", await self.xsrf()))
        return await self.browser.post(self.base + path, follow=follow, data=items)


@pytest.fixture
def admin_auth(services, fake_clock):
    """The app's AdminAuth with the fake clock and a cheap Argon2 setting (tests hash often)."""
    from argon2 import PasswordHasher

    from server.admin_auth import AdminAuth
    from server.admins import AdminAccounts

    services.admins = AdminAccounts(services.config, services.store, clock=fake_clock)
    auth = AdminAuth(services.config, services.store, services.admins, clock=fake_clock,
                     hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    services.admin_auth = auth
    return auth


@pytest.fixture
def admin(http_server, browser, app_url, admin_auth):
    """An AdminClient against the running test app (not yet signed in)."""
    return AdminClient(browser, app_url)
