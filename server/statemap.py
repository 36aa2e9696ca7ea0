"""The state→page map: what an entry is, its validation, and the in-memory copy that message replies read."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from server.i18n import T, Text
from server.redirects import BadTarget, check_target
from server.statekey import is_key
from server.tasks import cancel_and_wait
from server.wechat.oauth import SCOPES

log = logging.getLogger("wxauth.statemap")

MAX_TITLE = 64
MAX_KEYWORDS = 20
MAX_KEYWORD = 32
FULLWIDTH_COMMA = chr(0xFF0C)  # what a Chinese keyboard types for a comma; a keyword list may use either
REFRESH_SECONDS = 2.0  # a change reaches every process within this (plus one read)


class EntryError(ValueError):
    """A map entry that cannot be saved; `field` names the form field, `message` (a Text) says why.
    Its first argument is the whole sentence ("field: why"), so i18n.say(exc, locale) renders it."""

    def __init__(self, field: str, message: Text):
        super().__init__(T("%(field)s: %(why)s", field=field, why=message))
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    page: str
    title: str
    keywords: tuple[str, ...]
    scope: str

    @classmethod
    def from_doc(cls, doc: dict) -> "Entry":
        return cls(
            key=doc["_id"],
            page=doc.get("page", "/"),
            title=doc.get("title") or doc["_id"],
            keywords=tuple(doc.get("keywords") or ()),
            scope=doc.get("scope") if doc.get("scope") in SCOPES else "snsapi_base",
        )

    def fields(self) -> dict:
        """The document fields the store writes (the key is the _id)."""
        return {"page": self.page, "title": self.title, "keywords": list(self.keywords), "scope": self.scope}


def parse_keywords(raw: str | list | tuple | None) -> tuple[str, ...]:
    items = raw.replace(FULLWIDTH_COMMA, ",").split(",") if isinstance(raw, str) else list(raw or ())
    seen: list[str] = []
    for item in items:
        word = str(item).strip()
        if word and word.lower() not in (w.lower() for w in seen):
            seen.append(word)
    return tuple(seen)


def validate_entry(key: str, page: str, title: str = "", keywords=None, scope: str = "snsapi_base",
                   allowed_hosts: tuple[str, ...] = (), own_host: str | None = None) -> Entry:
    """Checks one entry as an admin typed it; raises EntryError naming the first bad field."""
    key = (key or "").strip()
    if not is_key(key):
        raise EntryError("key", T("use 1-64 letters or digits (WeChat allows only a-z, A-Z, 0-9 in state)"))
    page = (page or "").strip()
    try:
        check_target(page, allowed_hosts, own_host)
    except BadTarget as exc:
        # BadTarget's reason: a Text where server/redirects.py writes one, else its English words.
        raise EntryError("page", T("the page %(why)s", why=exc.args[0] if exc.args else str(exc))) from None
    title = (title or "").strip() or key
    if len(title) > MAX_TITLE:
        raise EntryError("title", T("keep it under %(max)s characters", max=MAX_TITLE))
    words = parse_keywords(keywords)
    if len(words) > MAX_KEYWORDS or any(len(w) > MAX_KEYWORD for w in words):
        raise EntryError("keywords", T("at most %(count)s keywords of up to %(max)s characters",
                                       count=MAX_KEYWORDS, max=MAX_KEYWORD))
    if scope not in SCOPES:
        raise EntryError("scope", T("must be one of %(scopes)s", scopes=", ".join(SCOPES)))
    return Entry(key=key, page=page, title=title, keywords=words, scope=scope)


class StateMap:
    """A copy of the `states` collection in memory, refreshed in the background.

    Replies read only this copy, so a slow or absent MongoDB never delays an answer to WeChat
    (which gives up after 5 s, docs/wechat-protocol.md §4.4).
    """

    def __init__(self, store, refresh_seconds: float = REFRESH_SECONDS):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.entries: dict[str, Entry] = {}
        self.settings: dict = {}
        self._task: asyncio.Task | None = None
        self._healthy = True

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def match_text(self, text: str) -> Entry | None:
        """The entry whose keyword equals the text (case-insensitive), else one the text contains."""
        text = text.strip().lower()
        if not text:
            return None
        contained = None
        for entry in self.entries.values():
            for word in entry.keywords:
                if word.lower() == text:
                    return entry
                if contained is None and word.lower() in text:
                    contained = entry
        return contained

    async def refresh(self) -> bool:
        try:
            docs = await self.store.list_states()
            settings = await self.store.get_settings()
        except Exception as exc:  # keep serving the last good copy
            if self._healthy:
                log.warning("state map refresh failed, serving the cached copy: %s", type(exc).__name__)
            self._healthy = False
            return False
        self.entries = {doc["_id"]: Entry.from_doc(doc) for doc in docs}
        self.settings = settings
        if not self._healthy:
            log.info("state map refresh works again (%d entries)", len(self.entries))
        self._healthy = True
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
