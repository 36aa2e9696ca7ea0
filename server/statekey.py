"""The map-entry key: the one pattern for routes, validation and links."""

from __future__ import annotations

import re

# Keys travel as the OAuth `state` and in /wx/go/<key>: WeChat allows only [a-zA-Z0-9] there
# (docs/wechat-protocol.md §6.2); 64 leaves room inside the 128-byte state limit.
KEY_PATTERN = "[a-zA-Z0-9]{1,64}"
KEY_RE = re.compile(f"^{KEY_PATTERN}$")


def is_key(text: str | None) -> bool:
    return bool(text) and KEY_RE.match(text) is not None
