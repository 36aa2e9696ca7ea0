"""The one validator of redirect targets: map-entry pages, `next` paths and the default page (CWE-601)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from server.i18n import T

MAX_TARGET = 1024  # WeChat's own limit for a menu URL (docs/wechat-protocol.md §8.3)
# Control characters and whitespace let a target be read differently by us and by a browser.
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class BadTarget(ValueError):
    """A redirect target that must not be followed; its Text says why (i18n.say for admins and the
    CLI; str() is English, for logs and the JS-SDK's JSON)."""


def check_target(target: str, allowed_hosts: tuple[str, ...] = (), own_host: str | None = None) -> str:
    """Returns `target` if it is a path on this site or an http(s) URL on an allowed host.

    Raises BadTarget otherwise. The target is checked as given and after percent-decoding,
    because some proxies and browsers decode `%2F%2F` or `%5C` into `//` or `\\` (CWE-601).
    """
    if not isinstance(target, str) or not target:
        raise BadTarget(T("is empty"))
    if len(target) > MAX_TARGET:
        raise BadTarget(T("is longer than %(max)s characters", max=MAX_TARGET))
    decoded = target
    for _ in range(3):
        if _UNSAFE_CHARS.search(decoded):
            raise BadTarget(T("contains spaces, control characters or backslashes"))
        step = unquote(decoded)
        if step == decoded:
            break
        decoded = step
    if target.startswith("/"):
        # '//host' and '/%2Fhost' are scheme-relative URLs to another site in some browsers.
        if decoded.startswith("//"):
            raise BadTarget(T("must not start with '//' (that points at another site)"))
        return target
    try:
        parts = urlsplit(target)
        host = (parts.hostname or "").lower()
        parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise BadTarget(T("is not a valid URL")) from None
    if parts.scheme not in ("http", "https"):
        raise BadTarget(T("must be a path starting with '/' or an http(s) URL"))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BadTarget(T("must not contain user information ('@')"))
    netloc = parts.netloc.lower()
    allowed = {h.lower() for h in allowed_hosts}
    if own_host:
        allowed.add(urlsplit(own_host).netloc.lower())
    if not host or (host not in allowed and netloc not in allowed):
        raise BadTarget(T("host %(host)s is not this site and not in WX_ALLOWED_HOSTS",
                            host=repr(host) if host else "(none)"))
    return target


def safe_target(target: str | None, default: str, allowed_hosts: tuple[str, ...] = (), own_host: str | None = None) -> str:
    """`target` when it passes check_target, else `default`: for untrusted input that must land somewhere."""
    try:
        return check_target(target or "", allowed_hosts, own_host)
    except BadTarget:
        return default
