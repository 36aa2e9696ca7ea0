"""The one redirect validator: hostile targets land on the default page (CWE-601)."""

from __future__ import annotations

import pytest

from server.redirects import BadTarget, check_target, safe_target

DEFAULT = "/wx/page/home"
OWN = "https://wx.example.com"

HOSTILE = [
    "//evil.example",
    "//evil.example/wx/page/me",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2Fevil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "https://evil.example",
    "HTTPS://EVIL.EXAMPLE/",
    "http://evil.example:443/",
    "https://wx.example.com@evil.example/",
    "https://wx.example.com.evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript%3Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    " /wx/page/me",
    "\t//evil.example",
    "/wx/page/me\r\nSet-Cookie: x=1",
    "/wx/page/%0d%0aSet-Cookie:x",
    "ftp://wx.example.com/",
    "",
    "/" + "a" * 2000,
    "evil.example",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_lands_on_default_page(target):
    assert safe_target(target, DEFAULT, ("partner.example",), OWN) == DEFAULT
    with pytest.raises(BadTarget):
        check_target(target, ("partner.example",), OWN)


@pytest.mark.parametrize("target", [
    "/wx/page/me",
    "/wx/page/bind?from=menu&x=1",
    "/wx/page/me#top",
    "https://wx.example.com/wx/page/me",
    "https://partner.example/shop?id=3",
    "HTTPS://Partner.Example/shop",
])
def test_allowed_target_is_kept(target):
    assert safe_target(target, DEFAULT, ("partner.example",), OWN) == target


def test_none_lands_on_default_page():
    assert safe_target(None, DEFAULT) == DEFAULT


def test_reason_is_readable():
    with pytest.raises(BadTarget, match="not this site and not in WX_ALLOWED_HOSTS"):
        check_target("https://evil.example/", (), OWN)
