"""/admin/users: followers who signed in, searchable and paged, with the daily sign-ins chart."""

from __future__ import annotations

import json
import math
from urllib.parse import urlencode

from handlers.admin.base import AdminHandler
from server.charts import daily_bars
from server.terminal import digits

USERS_PER_PAGE = 50
MAX_QUERY = 128
CHART_DAYS = 30


class UsersHandler(AdminHandler):
    nav = "users"

    async def get(self) -> None:
        # The sync's progress first: the counts and the list read after it are at least as new, so a
        # page that says "done" shows everything that run wrote (admin.js reloads for a later end).
        sync = await self.services.followers.progress()
        query = self.get_query_argument("q", "").strip()[:MAX_QUERY]
        page = max(1, digits(self.get_query_argument("page", "1")) or 1)
        total = await self.store.count_users(query)
        pages = max(1, math.ceil(total / USERS_PER_PAGE))
        page = min(page, pages)
        # skip/limit: only one page of documents is read, however many users there are.
        users = await self.store.find_users(query, skip=(page - 1) * USERS_PER_PAGE, limit=USERS_PER_PAGE)
        counts = await self.store.user_counts()
        chart = daily_bars(await self.store.daily_logins(CHART_DAYS))

        def page_url(number: int) -> str:
            return "/admin/users?" + urlencode({"q": query, "page": number} if query else {"page": number})

        self.render("admin/users.html", users=users, query=query, page=page, pages=pages, total=total,
                    counts=counts, chart=chart, page_url=page_url, sync=sync,
                    sync_started=self.get_query_argument("sync", None) is not None)


class FollowerSyncHandler(AdminHandler):
    """GET: the sync's progress and the user counts as JSON (the live bar and numbers); POST: starts a sync here."""

    nav = "users"

    async def get(self) -> None:
        progress = await self.services.followers.progress()
        # Read after the progress: once it says "done", the counts include every follower it wrote.
        progress["counts"] = await self.store.user_counts()
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(progress))

    def post(self) -> None:
        # A run already going here is left alone; one going in another process holds the lease,
        # so this one stops at once (SyncBusy) and the page shows the other's progress.
        self.services.followers.start_background()
        self.see_other("/admin/users?sync=1#sync")


default_handlers = [(r"/admin/users", UsersHandler), (r"/admin/users/sync", FollowerSyncHandler)]
