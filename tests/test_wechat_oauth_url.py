"""The web-authorization URL of docs/wechat-protocol.md §6.2: exact form, encoding, refusals."""

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from server.wechat.oauth import SCOPES, STATE_RE, authorize_url
from conftest import APPID  # the §3.7 test vector's values

OPEN_BASE = "https://open.weixin.qq.com"
REDIRECT = "https://wx.example.com/wx/page/wxauthor"


def test_authorize_url_is_exactly_the_documented_form():
    url = authorize_url(OPEN_BASE, APPID, REDIRECT, "snsapi_base", "abc123")
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize"
        "?appid=wx1234567890abcdef"
        "&redirect_uri=https%3A%2F%2Fwx.example.com%2Fwx%2Fpage%2Fwxauthor"
        "&response_type=code&scope=snsapi_base&state=abc123#wechat_redirect"
    )


def test_parameters_come_in_the_order_wechat_requires():
    url = authorize_url(OPEN_BASE, APPID, REDIRECT, "snsapi_userinfo", "S")
    query = urlsplit(url).query
    assert [name for name, _ in parse_qsl(query)] == [
        "appid",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ]
    assert url.endswith("&state=S#wechat_redirect")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://wx.example.com/wx/page/wxauthor?next=/a&b=c",
        "https://wx.example.com/wx/page/wxauthor#frag",
        "http://wx.example.com:8000/路径?x=1 2",
        "https://wx.example.com/a%2Fb",
    ],
)
def test_redirect_uri_is_fully_percent_encoded(redirect_uri):
    url = authorize_url(OPEN_BASE, APPID, redirect_uri, "snsapi_base", "S")
    encoded = url.split("&redirect_uri=", 1)[1].split("&response_type=", 1)[0]
    assert not set(encoded) & set(":/?#&= ")
    assert unquote(encoded) == redirect_uri
    assert url.count("#") == 1


def test_trailing_slash_on_the_open_base_does_not_double():
    url = authorize_url(OPEN_BASE + "/", APPID, REDIRECT, "snsapi_base", "S")
    assert url.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?appid=")


def test_sandbox_open_base_is_used_as_given():
    url = authorize_url("http://127.0.0.1:8001", APPID, REDIRECT, "snsapi_base", "S")
    assert url.startswith("http://127.0.0.1:8001/connect/oauth2/authorize?")


def test_both_scopes_are_accepted():
    assert SCOPES == ("snsapi_base", "snsapi_userinfo")
    for scope in SCOPES:
        assert f"&scope={scope}&" in authorize_url(OPEN_BASE, APPID, REDIRECT, scope, "S")


@pytest.mark.parametrize(
    "scope",
    ["", "snsapi_login", "SNSAPI_BASE", "snsapi_base,snsapi_userinfo", "snsapi_base&x=1", None],
)
def test_bad_scope_is_refused(scope):
    with pytest.raises(ValueError):
        authorize_url(OPEN_BASE, APPID, REDIRECT, scope, "S")


def test_state_of_128_characters_is_accepted():
    state = "aZ9" * 42 + "ab"
    assert len(state) == 128
    assert authorize_url(OPEN_BASE, APPID, REDIRECT, "snsapi_base", state).endswith(
        f"&state={state}#wechat_redirect"
    )


BAD_STATES = ["", "a" * 129, "abc\n", "a b", "a-b", "a_b", "状态", "a&b=c", "a#b", "%41", None]


@pytest.mark.parametrize("state", BAD_STATES)
def test_bad_state_is_refused(state):
    with pytest.raises(ValueError):
        authorize_url(OPEN_BASE, APPID, REDIRECT, "snsapi_base", state)


@pytest.mark.parametrize("state", [s for s in BAD_STATES if s is not None])
def test_state_re_refuses_what_authorize_url_refuses(state):
    assert STATE_RE.match(state) is None


@pytest.mark.parametrize("redirect_uri", ["", "/wx/page/wxauthor", "javascript:alert(1)", "//evil.example"])
def test_relative_or_non_http_redirect_uri_is_refused(redirect_uri):
    with pytest.raises(ValueError):
        authorize_url(OPEN_BASE, APPID, redirect_uri, "snsapi_base", "S")


def test_empty_appid_is_refused():
    with pytest.raises(ValueError):
        authorize_url(OPEN_BASE, "", REDIRECT, "snsapi_base", "S")
