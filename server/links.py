"""The links followers tap: one place builds the URL that starts authorization for a map entry, and reads it back."""

from __future__ import annotations

import re

from server.statekey import KEY_PATTERN

_GO_PATH = re.compile(f"^/wx/go/({KEY_PATTERN})$")


def entry_url(app_host: str, key: str) -> str:
    """The link a follower taps: it starts authorization for map entry `key` (DESIGN.md)."""
    return f"{app_host}/wx/go/{key}"


def entry_key_of(url: str, app_host: str) -> str | None:
    """The state key when `url` is one of our entry_url links, else None."""
    if not url.startswith(app_host + "/"):
        return None
    match = _GO_PATH.match(url[len(app_host):])
    return match.group(1) if match else None
