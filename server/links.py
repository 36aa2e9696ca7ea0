"""The links followers tap: one place builds the URL that starts authorization for a map entry."""

from __future__ import annotations


def entry_url(app_host: str, key: str) -> str:
    """The link a follower taps: it starts authorization for map entry `key` (DESIGN.md)."""
    return f"{app_host}/wx/go/{key}"
