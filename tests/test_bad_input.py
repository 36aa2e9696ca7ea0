"""Hostile input outside /wx: odd static paths, odd numbers, the Server header, HSTS, the sandbox's host."""

from __future__ import annotations

import string
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.httpclient import HTTPClientError

import wxconfig
from conftest import ROOT, make_env
from server.terminal import digits, row, safe


async def status_of(http_client, url: str, method: str = "GET") -> tuple[int, dict]:
    try:
        response = await http_client.fetch(url, method=method, allow_nonstandard_methods=True,
                                           body=None if method in ("GET", "HEAD", "OPTIONS") else b"")
    except HTTPClientError as exc:
        return exc.code, dict(exc.response.headers) if exc.response else {}
    return response.code, dict(response.headers)


@pytest.mark.gen_test
@pytest.mark.parametrize("path", [
    "/static/%00", "/static/a%00b.css", "/static/..%2f..%2fwxconfig.py", "/static/%2e%2e/wxconfig.py",
    "/static/" + "a" * 5000, "/static/a%ff", "/static/..%5cwxconfig.py", "/static/css", "/static/css/",
    "//static/x", "/static/css/%00site.css", "/static/.%00./x",
])
async def test_odd_static_paths_are_4xx_and_never_a_file_outside(http_client, app_url, path):
    status, headers = await status_of(http_client, app_url + path)
    assert 400 <= status < 500, (path, status)


@pytest.mark.gen_test
async def test_static_files_still_serve(http_client, app_url):
    response = await http_client.fetch(f"{app_url}/static/css/site.css")
    assert response.code == 200 and response.headers["Server"] == "wxauth"


PATHS = st.builds(lambda a, b: a + b, st.sampled_from(["/static/", "/wx/", "/wx/go/", "/admin/", "/", "/wx/scan/"]),
                  st.text(alphabet=string.printable + "%\u00ff\u3000", max_size=40))


@pytest.mark.gen_test(timeout=120)
async def test_no_request_path_or_method_is_a_500(http_client, app_url):
    from urllib.parse import quote

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(PATHS, st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    def probe(path, method):
        examples.append((quote(path, safe="/%?=&"), method))

    examples: list = []
    probe()
    for path, method in examples:
        status, _ = await status_of(http_client, app_url + path, method)
        assert status < 500, (path, method, status)


@pytest.mark.gen_test
async def test_no_version_in_the_server_header(http_client, app_url):
    for path in ("/", "/nothere", "/static/css/site.css", "/healthz"):
        _, headers = await status_of(http_client, app_url + path)
        assert headers["Server"] == "wxauth", path


@pytest.mark.gen_test
@pytest.mark.parametrize("env_overrides", [{"WX_APP_HOST": "https://wx.example.com"}])
async def test_hsts_under_https(http_client, app_url, env_overrides):
    for path in ("/", "/nothere", "/static/css/site.css"):
        _, headers = await status_of(http_client, app_url + path)
        assert headers["Strict-Transport-Security"] == "max-age=31536000", path


@pytest.mark.gen_test
async def test_no_hsts_under_plain_http(http_client, app_url):
    _, headers = await status_of(http_client, app_url + "/")
    assert "Strict-Transport-Security" not in headers


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "wx.example.com"])
def test_sandbox_refuses_a_host_off_loopback(host):
    with pytest.raises(wxconfig.ConfigError) as info:
        wxconfig.load({"WX_HOST": host}, sandbox=True)
    assert info.value.variable == "WX_HOST"


def test_sandbox_on_loopback_starts():
    assert wxconfig.load({"WX_HOST": "127.0.0.1"}, sandbox=True).host == "127.0.0.1"


@pytest.mark.parametrize("raw", ["８０００", "²", "١٢", "+80", "8_0", "80.0", "x"])
def test_ports_are_ascii_digits_only(raw):
    with pytest.raises(wxconfig.ConfigError) as info:
        wxconfig.load(make_env(8000, 8001, "db", WX_PORT=raw))
    assert info.value.variable == "WX_PORT"


@pytest.mark.parametrize("raw,value", [("12", 12), ("0", 0), ("١٢", None), ("²", None), ("１", None), (" 1", None), ("", None)])
def test_digits_take_ascii_only(raw, value):
    assert digits(raw) == value


def test_terminal_text_escapes_controls():
    assert safe("Alice\x1b[2J\r\x9b\u202e") == "Alice\\x1b[2J\\x0d\\x9b\\u202e"
    assert row("a\tb", "c\nd") == "a\\x09b\tc\\x0ad"


def test_cli_prints_stored_control_characters_escaped(mongo_uri, db_name):
    from procs import clean_env
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        client[db_name].users.insert_one({"openid": "oEvil", "nickname": "\x1b]0;pwned\x07\x1b[2J\u202eevil", "scope": "snsapi_userinfo"})
    env = clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name)
    listed = subprocess.run([sys.executable, "-m", "server", "users", "list"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    shown = subprocess.run([sys.executable, "-m", "server", "users", "show", "oEvil"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    for out in (listed.stdout, shown.stdout):
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J" in listed.stdout and "\\u202e" in listed.stdout
    assert '"openid": "oEvil"' in shown.stdout  # JSON output keeps its own lines


@pytest.mark.parametrize("value", ["١٢", "²", "-1", "1e3"])
def test_cli_counts_take_ascii_digits_only(value, mongo_uri, db_name):
    from procs import clean_env

    result = subprocess.run([sys.executable, "-m", "server", "users", "list", "--limit", value], cwd=ROOT,
                            env=clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, LANG="en_US.UTF-8"),
                            capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "ASCII digits" in result.stderr and "Traceback" not in result.stderr
