"""Forwarded headers count only from WX_TRUSTED_PROXIES (CWE-348)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

import wxconfig
from server.proxies import apply_forwarded, parse_networks

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


class Request:
    def __init__(self, peer: str, **headers):
        self.remote_ip = peer
        self.protocol = "http"
        self.headers = HTTPHeaders({k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize("peer,xff,proto,ip,scheme", [
    ("127.0.0.1", "203.0.113.9", "https", "203.0.113.9", "https"),
    ("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.0.0.5", "https", "203.0.113.9", "https"),  # skip our own proxies
    ("203.0.113.50", "1.2.3.4", "https", "203.0.113.50", "http"),  # an untrusted peer cannot pick its address
    ("127.0.0.1", "not-an-ip", "ftp", "127.0.0.1", "http"),
    ("127.0.0.1", "", "", "127.0.0.1", "http"),
])
def test_forwarded_headers_only_from_trusted_proxies(peer, xff, proto, ip, scheme):
    request = Request(peer, X_Forwarded_For=xff, X_Forwarded_Proto=proto)
    apply_forwarded(request, PROXIES)
    assert (request.remote_ip, request.protocol) == (ip, scheme)


def test_no_trusted_proxies_means_headers_are_ignored():
    request = Request("127.0.0.1", X_Forwarded_For="203.0.113.9")
    apply_forwarded(request, ())
    assert request.remote_ip == "127.0.0.1"


def test_bad_trusted_proxies_setting_names_the_variable():
    with pytest.raises(wxconfig.ConfigError, match="^WX_TRUSTED_PROXIES:"):
        wxconfig.load({"WX_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, sandbox=True)
