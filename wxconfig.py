"""WxConfig: every setting of wxauth, read from WX_* / MONGODB_URI variables and validated once at start."""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Mapping
from urllib.parse import urlsplit

# Sandbox identity: obviously fake values, so that a sandbox can never be mistaken for a real account.
SANDBOX_APPID = "wxsandbox000000001"
SANDBOX_SECRET = "sandboxsecret00000000000000000001"
SANDBOX_TOKEN = "sandboxtoken"
# A fixed key so the sandbox exercises safe (AES) mode like a real account should.
SANDBOX_AES_KEY = "c2FuZGJveGtleTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU"
SANDBOX_ORIGINAL_ID = "gh_sandbox0000"
# The sandbox listens on loopback with demo data; a known password lets a newcomer see /admin.
SANDBOX_ADMIN_PASSWORD = "sandbox"

# docs/wechat-protocol.md §15.6: WeChat's JS-SDK script, and where its stand-in serves a copy.
JSSDK_SCRIPT = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"
JSSDK_PATH = "/open/js/jweixin-1.6.0.js"
WECHAT_OPEN_BASE = "https://open.weixin.qq.com"

_APPID_RE = re.compile(r"^wx[0-9a-zA-Z]{16}$")
_SECRET_RE = re.compile(r"^[0-9a-zA-Z]{16,64}$")
# The console accepts a Token of 3-32 letters or digits.
_TOKEN_RE = re.compile(r"^[0-9a-zA-Z]{3,32}$")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_ORIGINAL_ID_RE = re.compile(r"^gh_[0-9A-Za-z]{4,32}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$")


class ConfigError(Exception):
    """A setting is missing or malformed; str() is the one line shown to the operator."""

    def __init__(self, variable: str, message: str):
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclasses.dataclass(frozen=True)
class WxConfig:
    appid: str
    appsecret: str
    token: str
    aes_key: str | None
    require_aes: bool
    app_host: str
    host: str
    port: int
    api_base: str
    open_base: str
    mongodb_uri: str | None
    db_name: str
    data_dir: str
    cookie_secret: str
    admin_password: str | None
    default_page: str
    allowed_hosts: tuple[str, ...]
    strict_state: bool
    trusted_proxies: tuple = ()
    sandbox: bool = False
    max_clock_skew: int = 300
    original_id: str | None = None
    aes_key_previous: str | None = None
    web_appid: str | None = None
    web_appsecret: str | None = None
    sync_followers_hours: int = 0
    notify_rate: int = 20

    @property
    def https(self) -> bool:
        return self.app_host.startswith("https://")

    @property
    def jssdk_script(self) -> str:
        """The JS-SDK a share page loads: WeChat's (§15.6), or the stand-in's copy when WX_OPEN_BASE
        points away from WeChat (as `--sandbox` does): a page then talks to one WeChat only."""
        if self.open_base == WECHAT_OPEN_BASE:
            return JSSDK_SCRIPT
        return self.open_base + JSSDK_PATH

    @property
    def web_redirect_uri(self) -> str:
        """The website app's callback (its 授权回调域 must be this host, docs/wechat-protocol.md §16.1)."""
        return self.app_host + "/wx/page/wxlogin"

    @property
    def redirect_uri(self) -> str:
        """The OAuth callback WeChat sends the follower back to."""
        return self.app_host + "/wx/page/wxauthor"

    def with_overrides(self, **changes) -> "WxConfig":
        return dataclasses.replace(self, **changes)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be 1 or 0, got {raw!r}")


def _required(env: Mapping[str, str], name: str, sandbox_value: str | None, sandbox: bool) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if sandbox and sandbox_value is not None:
        return sandbox_value
    raise ConfigError(name, "is required (set it in the environment; .env.example lists every setting)")


def _base_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(name, f"must be an http(s) base URL like https://example.com, got {raw!r}")
    return raw.rstrip("/")


def _port(raw: str, name: str) -> int:
    from server.terminal import digits

    port = digits(raw)
    if port is None or not 0 < port < 65536:
        raise ConfigError(name, f"must be a port number 1-65535, got {raw!r}")
    return port


def _aes_key(env: Mapping[str, str], sandbox: bool, name: str = "WX_AES_KEY") -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return SANDBOX_AES_KEY if sandbox and name == "WX_AES_KEY" else None
    from server.wechat.crypto import decode_aes_key

    try:
        decode_aes_key(raw)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None
    return raw


def _aes_key_previous(env: Mapping[str, str], aes_key: str | None) -> str | None:
    previous = _aes_key(env, False, "WX_AES_KEY_PREVIOUS")
    if previous and not aes_key:
        raise ConfigError("WX_AES_KEY_PREVIOUS", "is set but WX_AES_KEY is not (set the new key there)")
    if previous and previous == aes_key:
        raise ConfigError("WX_AES_KEY_PREVIOUS", "is the same as WX_AES_KEY; it is the key before the last change")
    return previous


def _max_clock_skew(env: Mapping[str, str]) -> int:
    raw = env.get("WX_MAX_CLOCK_SKEW", "").strip() or "300"
    # ASCII digits only: str.isdigit() also accepts "²" and "١", which int() then refuses.
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise ConfigError("WX_MAX_CLOCK_SKEW", f"must be a number of seconds (0 turns the check off), got {raw!r}")
    return int(raw)


def _sync_followers_hours(env: Mapping[str, str]) -> int:
    raw = env.get("WX_SYNC_FOLLOWERS_HOURS", "").strip() or "0"
    if not re.fullmatch(r"[0-9]{1,4}", raw):
        raise ConfigError("WX_SYNC_FOLLOWERS_HOURS", f"must be a whole number of hours (0: no periodic sync), got {raw!r}")
    return int(raw)


def _notify_rate(env: Mapping[str, str]) -> int:
    raw = env.get("WX_NOTIFY_RATE", "").strip() or "20"
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 10_000:
        raise ConfigError("WX_NOTIFY_RATE", f"must be template messages per second, 1-10000, got {raw!r}")
    return int(raw)


def _web_app(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    appid = env.get("WX_WEB_APPID", "").strip() or None
    secret = env.get("WX_WEB_APPSECRET", "").strip() or None
    if bool(appid) != bool(secret):
        missing = "WX_WEB_APPSECRET" if appid else "WX_WEB_APPID"
        raise ConfigError(missing, "is required too: the website app needs both its AppID and AppSecret")
    if appid and not _APPID_RE.match(appid):
        raise ConfigError("WX_WEB_APPID", "must look like wx followed by 16 letters or digits (the website app's AppID)")
    if secret and not _SECRET_RE.match(secret):
        raise ConfigError("WX_WEB_APPSECRET", "must be the website app's AppSecret (16-64 letters or digits)")
    return appid, secret


def _original_id(env: Mapping[str, str], sandbox: bool) -> str | None:
    raw = env.get("WX_ORIGINAL_ID", "").strip()
    if not raw:
        return SANDBOX_ORIGINAL_ID if sandbox else None
    if not _ORIGINAL_ID_RE.match(raw):
        raise ConfigError("WX_ORIGINAL_ID", "must be the account's original id from the console, like gh_0123456789ab")
    return raw


def _default_page(env: Mapping[str, str]) -> str:
    raw = env.get("WX_DEFAULT_PAGE", "").strip() or "/wx/page/home"
    # Only a path on this site: the default page is where untrusted input lands (CWE-601).
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        raise ConfigError("WX_DEFAULT_PAGE", f"must be a path on this site starting with '/', got {raw!r}")
    return raw


def _allowed_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    hosts = []
    for item in env.get("WX_ALLOWED_HOSTS", "").split(","):
        item = item.strip().lower()
        if not item:
            continue
        if not _HOST_RE.match(item):
            raise ConfigError("WX_ALLOWED_HOSTS", f"{item!r} is not a host name (comma-separated, no scheme)")
        hosts.append(item)
    return tuple(hosts)


def _trusted_proxies(env: Mapping[str, str]) -> tuple:
    from server.proxies import parse_networks

    try:
        return parse_networks(env.get("WX_TRUSTED_PROXIES", ""))
    except ValueError as exc:
        raise ConfigError("WX_TRUSTED_PROXIES", f"{exc} (comma-separated, e.g. 127.0.0.1,10.0.0.0/8)") from None


def load(env: Mapping[str, str], *, sandbox: bool = False, port: int | None = None,
         require_credentials: bool = True) -> WxConfig:
    """Builds and validates the configuration; raises ConfigError naming the first bad variable.

    `require_credentials=False` is for data commands (states, users, audit) that never call
    WeChat: missing AppID, secret, Token or cookie secret are then filled with inert values.
    """
    lenient = sandbox or not require_credentials
    appid = _required(env, "WX_APPID", SANDBOX_APPID, lenient)
    if not _APPID_RE.match(appid):
        raise ConfigError("WX_APPID", f"must look like wx followed by 16 letters or digits, got {len(appid)} characters")
    appsecret = _required(env, "WX_APPSECRET", SANDBOX_SECRET, lenient)
    if not _SECRET_RE.match(appsecret):
        raise ConfigError("WX_APPSECRET", "must be the AppSecret from the console (16-64 letters or digits)")
    token = _required(env, "WX_TOKEN", SANDBOX_TOKEN, lenient)
    if not _TOKEN_RE.match(token):
        raise ConfigError("WX_TOKEN", "must be 3-32 letters or digits, as the WeChat console requires")
    aes_key = _aes_key(env, sandbox)
    aes_key_previous = _aes_key_previous(env, aes_key)
    web_app = _web_app(env)
    require_aes = _flag(env, "WX_REQUIRE_AES", False)
    if require_aes and not aes_key:
        raise ConfigError("WX_REQUIRE_AES", "is 1 but WX_AES_KEY is not set")

    host = env.get("WX_HOST", "").strip() or "127.0.0.1"
    if sandbox and host not in ("127.0.0.1", "::1", "localhost"):
        # The sandbox's admin password, Token and keys are in this repository: never on a network.
        raise ConfigError("WX_HOST", f"--sandbox listens on loopback only (127.0.0.1 or ::1), got {host!r}")
    if port is None:
        port = _port(env.get("WX_PORT", "").strip() or "8000", "WX_PORT")
    app_host = _base_url(env, "WX_APP_HOST", f"http://127.0.0.1:{port}")
    if urlsplit(app_host).path not in ("", "/"):
        raise ConfigError("WX_APP_HOST", "must be scheme and host only, like https://wx.example.com")

    mongodb_uri = env.get("MONGODB_URI", "").strip() or None
    if mongodb_uri and not mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError("MONGODB_URI", "must start with mongodb:// or mongodb+srv://")
    db_name = env.get("WX_DB_NAME", "").strip() or "wxauth"
    if not _DB_NAME_RE.match(db_name):
        raise ConfigError("WX_DB_NAME", "must be 1-63 letters, digits, '_' or '-'")

    cookie_secret = env.get("WX_COOKIE_SECRET", "").strip()
    if not cookie_secret:
        if not lenient:
            raise ConfigError("WX_COOKIE_SECRET", "is required: a random string of 32+ characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        cookie_secret = secrets.token_urlsafe(32)
    elif len(cookie_secret) < 32:
        raise ConfigError("WX_COOKIE_SECRET", f"must be at least 32 characters, got {len(cookie_secret)}")

    return WxConfig(
        appid=appid,
        appsecret=appsecret,
        token=token,
        aes_key=aes_key,
        require_aes=require_aes,
        app_host=app_host,
        host=host,
        port=port,
        api_base=_base_url(env, "WX_API_BASE", "https://api.weixin.qq.com"),
        open_base=_base_url(env, "WX_OPEN_BASE", WECHAT_OPEN_BASE),
        mongodb_uri=mongodb_uri,
        db_name=db_name,
        data_dir=env.get("WX_DATA_DIR", "").strip() or "./data",
        cookie_secret=cookie_secret,
        admin_password=env.get("WX_ADMIN_PASSWORD", "").strip() or (SANDBOX_ADMIN_PASSWORD if sandbox else None),
        default_page=_default_page(env),
        allowed_hosts=_allowed_hosts(env),
        strict_state=_flag(env, "WX_STRICT_STATE", True),
        trusted_proxies=_trusted_proxies(env),
        sandbox=sandbox,
        max_clock_skew=_max_clock_skew(env),
        original_id=_original_id(env, sandbox),
        aes_key_previous=aes_key_previous,
        web_appid=web_app[0],
        web_appsecret=web_app[1],
        sync_followers_hours=_sync_followers_hours(env),
        notify_rate=_notify_rate(env),
    )
