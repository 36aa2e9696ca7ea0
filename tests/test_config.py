"""WxConfig: every contract variable, and one clear line naming the variable when one is wrong."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import wxconfig
from conftest import AES_KEY, ROOT

GOOD = {"WX_APPID": "wx1234567890abcdef", "WX_APPSECRET": "0123456789abcdef0123456789abcdef",
        "WX_TOKEN": "testtoken", "WX_COOKIE_SECRET": "c" * 40}


def test_defaults_follow_the_contract():
    config = wxconfig.load(GOOD)
    assert (config.host, config.port) == ("127.0.0.1", 8000)
    assert config.app_host == "http://127.0.0.1:8000"
    assert config.api_base == "https://api.weixin.qq.com" and config.open_base == "https://open.weixin.qq.com"
    assert config.mongodb_uri is None and config.db_name == "wxauth" and config.data_dir == "./data"
    assert config.aes_key is None and config.require_aes is False and config.strict_state is True
    assert config.admin_password is None and config.allowed_hosts == ()
    assert config.default_page == "/wx/page/home"
    assert config.redirect_uri == "http://127.0.0.1:8000/wx/page/wxauthor"


def test_every_variable_is_read():
    env = dict(GOOD, WX_AES_KEY=AES_KEY, WX_REQUIRE_AES="1", WX_APP_HOST="https://wx.example.com",
               WX_HOST="0.0.0.0", WX_PORT="9000", WX_API_BASE="http://127.0.0.1:1", WX_OPEN_BASE="http://127.0.0.1:2",
               MONGODB_URI="mongodb://db:27017/?replicaSet=rs0", WX_DB_NAME="prod", WX_DATA_DIR="/var/lib/wx",
               WX_ADMIN_PASSWORD="s3cret-password", WX_DEFAULT_PAGE="/welcome", WX_ALLOWED_HOSTS="shop.example, Partner.Example",
               WX_STRICT_STATE="0")
    c = wxconfig.load(env)
    assert (c.aes_key, c.require_aes, c.app_host, c.host, c.port) == (AES_KEY, True, "https://wx.example.com", "0.0.0.0", 9000)
    assert (c.api_base, c.open_base, c.db_name, c.data_dir) == ("http://127.0.0.1:1", "http://127.0.0.1:2", "prod", "/var/lib/wx")
    assert c.mongodb_uri.startswith("mongodb://db") and c.admin_password == "s3cret-password"
    assert c.default_page == "/welcome" and c.allowed_hosts == ("shop.example", "partner.example")
    assert c.strict_state is False and c.https is True


BAD = [
    ({"WX_APPID": ""}, "WX_APPID"),
    ({"WX_APPID": "123"}, "WX_APPID"),
    ({"WX_APPSECRET": ""}, "WX_APPSECRET"),
    ({"WX_TOKEN": "a"}, "WX_TOKEN"),
    ({"WX_TOKEN": "has space"}, "WX_TOKEN"),
    ({"WX_AES_KEY": AES_KEY[:42]}, "WX_AES_KEY"),
    ({"WX_AES_KEY": AES_KEY[:42] + "!"}, "WX_AES_KEY"),
    ({"WX_REQUIRE_AES": "1"}, "WX_REQUIRE_AES"),
    ({"WX_REQUIRE_AES": "maybe"}, "WX_REQUIRE_AES"),
    ({"WX_PORT": "99999"}, "WX_PORT"),
    ({"WX_PORT": "http"}, "WX_PORT"),
    ({"WX_APP_HOST": "wx.example.com"}, "WX_APP_HOST"),
    ({"WX_APP_HOST": "https://wx.example.com/sub"}, "WX_APP_HOST"),
    ({"WX_API_BASE": "ftp://x"}, "WX_API_BASE"),
    ({"MONGODB_URI": "localhost:27017"}, "MONGODB_URI"),
    ({"WX_DB_NAME": "a/b"}, "WX_DB_NAME"),
    ({"WX_COOKIE_SECRET": ""}, "WX_COOKIE_SECRET"),
    ({"WX_COOKIE_SECRET": "short"}, "WX_COOKIE_SECRET"),
    ({"WX_DEFAULT_PAGE": "https://evil.example"}, "WX_DEFAULT_PAGE"),
    ({"WX_DEFAULT_PAGE": "//evil.example"}, "WX_DEFAULT_PAGE"),
    ({"WX_ALLOWED_HOSTS": "https://x.example"}, "WX_ALLOWED_HOSTS"),
    ({"WX_STRICT_STATE": "2"}, "WX_STRICT_STATE"),
]


@pytest.mark.parametrize("change,variable", BAD)
def test_bad_setting_names_the_variable(change, variable):
    with pytest.raises(wxconfig.ConfigError) as info:
        wxconfig.load({**GOOD, **change})
    assert info.value.variable == variable
    assert str(info.value).startswith(variable + ":")


def test_aes_key_error_does_not_echo_the_key():
    with pytest.raises(wxconfig.ConfigError) as info:
        wxconfig.load({**GOOD, "WX_AES_KEY": AES_KEY[:42]})
    assert AES_KEY[:42] not in str(info.value) and "42" in str(info.value)


def test_sandbox_needs_no_credentials():
    config = wxconfig.load({}, sandbox=True)
    assert config.appid == wxconfig.SANDBOX_APPID and config.aes_key and len(config.cookie_secret) >= 32
    assert config.admin_password == "sandbox"  # a newcomer can open /admin on loopback


def test_bad_setting_stops_startup_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WX_") and k != "MONGODB_URI"}
    env.update(GOOD, WX_AES_KEY=AES_KEY[:42], WX_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wxauth: WX_AES_KEY:"), result.stderr
    assert "Traceback" not in result.stderr
