"""The welcome text and default reply an admin sets: their names, their limit, and saving them."""

from __future__ import annotations

from server.i18n import T, Text

NAMES = ("welcome", "default_reply")
# WeChat shows text replies up to about 2048 bytes; 600 characters of Chinese (3 bytes each) stays inside.
MAX_CHARS = 600


def problem(text: str) -> Text | None:
    """Why `text` cannot be saved, or None. An empty text means "use the built-in default"."""
    if len(text) > MAX_CHARS:
        return T("at most %(max)s characters (now %(now)s)", max=MAX_CHARS, now=len(text))
    return None


class ReplyTexts:
    """Saves the texts (audited by Store.set_setting) and refreshes this process's copy of them."""

    def __init__(self, store, state_map=None):
        self.store = store
        self.state_map = state_map

    async def current(self) -> dict[str, str]:
        settings = await self.store.get_settings()
        return {name: settings.get(name) or "" for name in NAMES}

    async def save(self, values: dict[str, str], by: str) -> dict[str, Text]:
        """Writes the texts that changed; returns problems by name, and then writes nothing."""
        errors = {name: why for name, text in values.items() if (why := problem(text))}
        unknown = [name for name in values if name not in NAMES]
        if unknown:
            raise ValueError(f"not a reply text: {', '.join(unknown)}")
        if errors:
            return errors
        current = await self.current()
        for name, text in values.items():
            if text != current[name]:
                await self.store.set_setting(name, text, by=by)
        if self.state_map is not None:
            await self.state_map.refresh()
        return {}
