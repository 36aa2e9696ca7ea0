"""The state-map service: every change to the map, from an admin page or the command line, goes through here."""

from __future__ import annotations

import datetime

from server.i18n import T
from server.statemap import Entry, EntryError, validate_entry


class EntryChanged(Exception):
    """Someone saved or deleted the entry after the form was opened; `current` is what is stored now."""

    def __init__(self, current: dict | None):
        super().__init__(T("The entry changed since it was read."))
        self.current = current


def version_of(doc: dict | None) -> str:
    """What an edit form remembers of the entry it was opened on, to notice a concurrent change."""
    if not doc:
        return ""
    at = doc.get("updated_at")
    return at.isoformat() if isinstance(at, datetime.datetime) else str(at or "")


class StateEntries:
    """Validation, keyword conflicts, the audit (Store.set_state writes it) and this process's cache.

    `state_map` is None for the command line: the serving processes pick a change up within
    StateMap's refresh interval.
    """

    def __init__(self, config, store, state_map=None):
        self.config = config
        self.store = store
        self.state_map = state_map

    async def rows(self) -> list[tuple[Entry, dict]]:
        return [(Entry.from_doc(doc), doc) for doc in await self.store.list_states()]

    async def get(self, key: str) -> dict | None:
        return await self.store.get_state(key)

    async def add(self, values: dict, by: str) -> Entry:
        """A new entry; EntryError when the key exists or a field is wrong."""
        docs = await self.store.list_states()
        entry = self._check(values, docs)
        if any(doc["_id"] == entry.key for doc in docs):
            raise EntryError("key", T("“%(key)s” already exists: edit it in the table instead", key=entry.key))
        await self._save(entry, by)
        return entry

    async def put(self, values: dict, by: str, version: str | None = None) -> tuple[Entry, dict | None]:
        """Adds or replaces an entry and returns it with the one it replaced. With `version`
        (from version_of), EntryChanged when the stored entry is no longer the one read."""
        docs = await self.store.list_states()
        current = next((doc for doc in docs if doc["_id"] == (values.get("key") or "").strip()), None)
        if version is not None and version != version_of(current):
            raise EntryChanged(current)
        entry = self._check(values, docs)
        await self._save(entry, by)
        return entry, current

    async def delete(self, key: str, by: str) -> bool:
        """False when there was no such entry (another admin, or a second click)."""
        if await self.store.delete_state(key, by=by) is None:
            return False
        await self._refresh()
        return True

    def _check(self, values: dict, docs: list[dict]) -> Entry:
        entry = validate_entry(values.get("key"), values.get("page"), values.get("title", ""), values.get("keywords"),
                               values.get("scope") or "snsapi_base", self.config.allowed_hosts, self.config.app_host)
        # A text must map to one link: a keyword another entry answers to is refused, named with its owner.
        owner = {w.lower(): doc["_id"] for doc in docs if doc["_id"] != entry.key
                 for w in Entry.from_doc(doc).keywords}
        clash = [w for w in entry.keywords if w.lower() in owner]
        if clash:
            named = ", ".join(f"“{w}” ({owner[w.lower()]})" for w in clash)
            raise EntryError("keywords", T("already used by another entry: %(words)s", words=named))
        return entry

    async def _save(self, entry: Entry, by: str) -> None:
        await self.store.set_state(entry.key, entry.fields(), by=by)
        await self._refresh()

    async def _refresh(self) -> None:
        # This process answers with the change at once; the others within StateMap's refresh (2 s).
        if self.state_map is not None:
            await self.state_map.refresh()
