"""MongoDB access through PyMongo's AsyncMongoClient: users, states, deliveries, state tokens, tokens, audit."""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

log = logging.getLogger("wxauth.store")

# Notes on time fields:
# - "now" on an update is written with $currentDate, so every process shares MongoDB's clock;
# - documents written once (deliveries, state tokens, audit, logins) carry real datetimes, so
#   real MongoDB's TTL indexes can clean them up; correctness never depends on TTL (DESIGN.md);
# - deadlines that are set by update (token expiry, leases) are Unix seconds (float): the
#   embedded nx-27017 server stores a $set datetime as a string, numbers behave the same on both.
DELIVERY_TTL = 60
STATE_TOKEN_TTL = 600
LOGIN_HISTORY_DAYS = 90

# What /sns/userinfo still means. Since 2021-10-20 WeChat answers sex 0 and province, city and
# country "" for everyone (docs/wechat-protocol.md §14.2), so those are not stored.
USER_PROFILE_FIELDS = ("nickname", "headimgurl", "privilege")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_client(uri: str, **kwargs) -> AsyncMongoClient:
    """One client per process, created after any fork (PyMongo clients are not fork-safe)."""
    options = dict(tz_aware=True, serverSelectionTimeoutMS=3000, connectTimeoutMS=2000, appname="wxauth")
    options.update(kwargs)
    return AsyncMongoClient(uri, **options)


class NonceReused(Exception):
    """A signed (timestamp, nonce) came back with another body: a replay, not WeChat's retry."""


class DeliveryBatch:
    """Writes the delivery claims of one event-loop turn with one insert_many.

    Under load many messages arrive in the same turn; one round trip for all of them instead of
    one each is most of the message path's cost (bench/messages.py). The unique _id still makes
    the first delivery of a key win, across batches and processes.

    A claim also carries its "timestamp:nonce", under a second unique index: a delivery whose
    pair is already on another claim is a replay (NonceReused), and its claim is not written.
    One document and one round trip do both jobs; a second collection cost 25 % of the rate.
    """

    def __init__(self, collection):
        self.collection = collection
        self.pending: list[tuple[dict, asyncio.Future]] = []

    def record(self, claim: dict) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((claim, future))
        if len(self.pending) == 1:
            loop.create_task(self._flush())  # runs after the current turn has queued its records
        return future

    async def _flush(self) -> None:
        batch, self.pending = self.pending, []
        taken: list[int] = []
        failed: dict[int, Exception] = {}
        try:
            await self.collection.insert_many([claim for claim, _ in batch], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") == 11000:
                    taken.append(error["index"])
                else:
                    failed[error["index"]] = exc
        except Exception as exc:
            failed = dict.fromkeys(range(len(batch)), exc)
        stored: dict[str, dict] = {}
        if taken:
            # Which unique key was taken? Ask for the _ids rather than parse error text, which
            # differs between servers: a claim that exists is a retry, else the nonce was taken.
            try:
                ids = list({batch[i][0]["_id"] for i in taken})
                stored = {doc["_id"]: doc async for doc in self.collection.find({"_id": {"$in": ids}})}
            except Exception as exc:
                failed.update(dict.fromkeys(taken, exc))
        taken_set = set(taken)
        for i, (claim, future) in enumerate(batch):
            if future.done():  # the caller gave up waiting
                continue
            if i in failed:
                future.set_exception(failed[i])
            elif i not in taken_set:
                future.set_result(None)
            elif claim["_id"] in stored:
                future.set_result(stored[claim["_id"]].get("reply") or claim["reply"])
            else:
                future.set_exception(NonceReused())


def _user(doc: dict | None) -> dict | None:
    # nx-27017 returns a boolean written by $set as 0/1; queries match either way.
    if doc is not None and "subscribed" in doc:
        doc["subscribed"] = bool(doc["subscribed"])
    return doc


class Store:
    """The only module that speaks MongoDB; handlers and services call these methods."""

    def __init__(self, client: AsyncMongoClient, db_name: str):
        self.client = client
        self.db = client[db_name]
        self.users = self.db.users
        self.states = self.db.states
        self.oauth_states = self.db.oauth_states
        self.messages = self.db.messages
        self.tokens = self.db.tokens
        self.audit = self.db.audit
        self.logins = self.db.logins
        self.settings = self.db.settings
        self.admin_attempts = self.db.admin_attempts
        self.admin_sessions = self.db.admin_sessions
        self.admins = self.db.admins  # named admin accounts (server/admins.py): _id = the name
        self.admin_invites = self.db.admin_invites  # one-time invitations: _id = a hash of the token
        self.scan_logins = self.db.scan_logins
        self.jobs = self.db.jobs  # long jobs (follower sync, notifications): progress, cursor and lease
        self.notify_sends = self.db.notify_sends  # one outcome per notification job and recipient
        self.funnel = self.db.funnel  # per-day counters of each entry's funnel
        self.notify_events = self.db.notify_events  # delivery events that came before their send was written
        self._deliveries = DeliveryBatch(self.messages)

    async def ping(self, timeout: float = 1.0) -> bool:
        try:
            await asyncio.wait_for(self.db.command("ping"), timeout)
            return True
        except Exception:  # any failure means "not ready"; the caller reports it
            return False

    async def ensure_indexes(self) -> None:
        await self.users.create_index("openid", unique=True)
        await self.users.create_index("unionid", sparse=True)
        await self.users.create_index("nickname")
        await self.users.create_index([("last_login_at", DESCENDING)])
        await self.oauth_states.create_index("expires_at", expireAfterSeconds=0)
        await self._drop_old_delivery_ttl()
        await self.messages.create_index("expires_at", expireAfterSeconds=0)
        # Sparse: claims written before nonces were recorded have none (MongoDB would see many nulls).
        await self.messages.create_index("nonce", unique=True, sparse=True)
        await self.audit.create_index([("at", DESCENDING)])
        await self.logins.create_index("at", expireAfterSeconds=LOGIN_HISTORY_DAYS * 86400)
        await self.scan_logins.create_index("expires_at", expireAfterSeconds=0)
        await self.scan_logins.create_index("changed_at")
        await self.notify_sends.create_index("msgid", sparse=True)
        await self.notify_sends.create_index("job")
        await self.jobs.create_index("kind")
        await self.funnel.create_index([("key", ASCENDING), ("day", ASCENDING)])
        await self.notify_events.create_index("at", expireAfterSeconds=7 * 86400)

    async def _drop_old_delivery_ttl(self) -> None:
        # Until nonces were recorded, claims expired 60 s after `at`; they now live as long as
        # their nonce matters (`expires_at`), and the old TTL index would delete them too soon.
        # Matched by key, not name: servers name indexes differently (at_1, idx_messages_at).
        async for index in await self.messages.list_indexes():
            if list(index.get("key", {}).keys()) == ["at"] and "expireAfterSeconds" in index:
                await self.messages.drop_index(index["name"])

    # ---- state map -------------------------------------------------------------------------

    async def list_states(self) -> list[dict]:
        return await self.states.find({}).sort("_id", ASCENDING).to_list()

    async def get_state(self, key: str) -> dict | None:
        return await self.states.find_one({"_id": key})

    async def set_state(self, key: str, fields: dict, by: str) -> dict | None:
        """Creates or replaces a map entry; returns the previous one (None when new) and audits it."""
        before = await self.get_state(key)
        await self.states.update_one(
            {"_id": key},
            {"$set": {**fields, "updated_by": by}, "$currentDate": {"updated_at": True}},
            upsert=True,
        )
        after = await self.get_state(key)
        await self.record_audit(by, "state.set", key, before, after)
        return before

    async def delete_state(self, key: str, by: str) -> dict | None:
        before = await self.states.find_one_and_delete({"_id": key})
        if before is not None:
            await self.record_audit(by, "state.delete", key, before, None)
        return before

    async def set_state_follow_qr(self, key: str, code: dict) -> bool:
        """Stores the entry's follow code unless one is stored already; True when this one was."""
        result = await self.states.update_one({"_id": key, "follow_qr": None}, {"$set": {"follow_qr": code}})
        return result.modified_count == 1

    # ---- settings (welcome text, default reply) -----------------------------------------------

    async def get_settings(self) -> dict[str, Any]:
        return {doc["_id"]: doc.get("value") for doc in await self.settings.find({}).to_list()}

    async def set_setting(self, name: str, value: Any, by: str) -> None:
        before = await self.settings.find_one({"_id": name})
        await self.settings.update_one({"_id": name}, {"$set": {"value": value}}, upsert=True)
        await self.record_audit(by, "setting.set", name, before, {"_id": name, "value": value})

    async def get_setting(self, name: str, default: Any = None) -> Any:
        doc = await self.settings.find_one({"_id": name})
        return doc.get("value", default) if doc else default

    # ---- message deliveries (dedup of WeChat's retries, docs/wechat-protocol.md §4.4) -------------

    async def record_delivery(self, key: str, reply: str, nonce: str | None = None,
                              nonce_seconds: float = 0.0) -> str | None:
        """Claims delivery `key` with its reply: None when this was the first delivery, else the
        reply stored by the first one (WeChat's retry must get that one).

        `nonce` ("timestamp:nonce") stays on the claim for `nonce_seconds`; raises NonceReused,
        and claims nothing, when another claim holds it (the same pair with another message).
        """
        at = utcnow()
        claim = {"_id": key, "reply": reply, "at": at,
                 "expires_at": at + datetime.timedelta(seconds=max(DELIVERY_TTL, nonce_seconds))}
        if nonce is not None:
            claim["nonce"] = nonce
        return await self._deliveries.record(claim)

    # ---- users -----------------------------------------------------------------------------

    async def get_user(self, openid: str) -> dict | None:
        return _user(await self.users.find_one({"openid": openid}))

    async def set_subscribed(self, openid: str, subscribed: bool) -> None:
        # subscribed_ts (Unix seconds) lets a follower sync tell a change made during it from stale data.
        await self.users.update_one(
            {"openid": openid},
            {"$set": {"subscribed": subscribed, "subscribed_ts": time.time()},
             "$currentDate": {"subscribed_changed_at": True}},
            upsert=True,
        )

    # ---- follower sync (server/followers.py) ---------------------------------------------------

    async def write_followers(self, infos: list[dict], run: str) -> int:
        """Writes one slice of batchget answers (§14.2 fields) for sync `run`; returns the round trips.

        Not one upsert each: the embedded server scans the collection for every upserting
        filter (150 a second at 10,000 users). One find names the known followers, one
        insert_many adds the others, one bulk update by _id refreshes the known ones. Rerunning
        a slice writes the same values again: a resumed sync duplicates nothing.
        """
        docs = {}
        for info in infos:
            openid = info.get("openid")
            if not isinstance(openid, str) or not openid:
                continue
            fields: dict[str, Any] = {"subscribed": bool(info.get("subscribe")), "sync_run": run}
            if info.get("subscribe"):
                fields.update(subscribe_time=info.get("subscribe_time"), subscribe_scene=info.get("subscribe_scene"),
                              tags=list(info.get("tagid_list") or []))
                if info.get("unionid"):
                    fields["unionid"] = info["unionid"]
            docs[openid] = fields
        if not docs:
            return 0
        known = {doc["openid"]: doc["_id"] async for doc in self.users.find({"openid": {"$in": list(docs)}}, {"openid": 1})}
        trips = 1
        new = [{"openid": openid, **fields, "created_at": utcnow()} for openid, fields in docs.items() if openid not in known]
        late: list[str] = []
        if new:
            trips += 1
            try:
                await self.users.insert_many(new, ordered=False)
            except BulkWriteError as exc:
                # A subscribe event created some of them meanwhile: update those instead.
                late = [new[e["index"]]["openid"] for e in exc.details.get("writeErrors", []) if e.get("code") == 11000]
                if len(late) != len(exc.details.get("writeErrors", [])):
                    raise
        updates = [UpdateOne({"_id": _id}, {"$set": docs[openid]}) for openid, _id in known.items()]
        updates += [UpdateOne({"openid": openid}, {"$set": docs[openid]}) for openid in late]
        if updates:
            trips += 1
            await self.users.bulk_write(updates, ordered=False)
        return trips

    async def mark_unsubscribed_since(self, run: str, started_at: float) -> int:
        """Followers the sync did not see are not following any more, unless they (re)subscribed
        after it started: then their event is newer than the list."""
        result = await self.users.update_many(
            {"subscribed": True, "sync_run": {"$ne": run},
             "$or": [{"subscribed_ts": {"$exists": False}}, {"subscribed_ts": {"$lt": started_at}}]},
            {"$set": {"subscribed": False, "subscribed_ts": time.time()}})
        return result.modified_count

    async def get_job(self, name: str) -> dict | None:
        return await self.jobs.find_one({"_id": name})

    async def take_job(self, name: str, holder: str, lease_seconds: float, fresh: dict,
                       restart: bool = True) -> dict | None:
        """The job `name` for `holder`: resumed when a run was left unfinished (stopped, or its
        holder died and the lease ran out), else started anew from `fresh`; None while another
        holder's lease is alive."""
        now = time.time()
        doc = await self.get_job(name)
        if doc is None:
            try:
                await self.jobs.insert_one({"_id": name, **fresh, "status": "running", "holder": holder,
                                            "lease_until": now + lease_seconds, "started_at": now, "taken_at": now,
                                            "updated_at": now})
            except DuplicateKeyError:
                return None
            return await self.get_job(name)
        if doc.get("status") == "running" and float(doc.get("lease_until") or 0) > now and doc.get("holder") != holder:
            return None
        if not restart and doc.get("status") not in ("queued", "running", "stopped"):
            return None  # a finished or cancelled job is never run again (it would send twice)
        update = {"holder": holder, "lease_until": now + lease_seconds, "updated_at": now, "status": "running",
                  "taken_at": now, "error": None, "finished_at": None}
        if doc.get("status") not in ("running", "stopped"):
            update.update(fresh, started_at=now)  # queued, or the last run finished: a new one
        # Compare-and-set on the lease seen above: of two processes taking it at once, one wins.
        return await self.jobs.find_one_and_update(
            {"_id": name, "holder": doc.get("holder"), "lease_until": doc.get("lease_until")},
            {"$set": update}, return_document=ReturnDocument.AFTER)

    async def create_job(self, doc: dict) -> None:
        await self.jobs.insert_one({**doc, "updated_at": time.time()})

    async def list_jobs(self, kind: str, limit: int = 20) -> list[dict]:
        return await self.jobs.find({"kind": kind}).sort("created_at", DESCENDING).limit(limit).to_list()

    async def runnable_jobs(self, kind: str, now: float) -> list[dict]:
        """Jobs of `kind` waiting for a runner: queued, held by a process that died (lease
        over), or stopped by WeChat trouble and due for another try."""
        return await self.jobs.find({"kind": kind, "$or": [
            {"status": "queued"},
            {"status": "running", "lease_until": {"$lt": now}},
            {"status": "stopped", "retry_at": {"$lt": now}}]}, {"_id": 1}).limit(10).to_list()

    async def set_job_status(self, name: str, status: str, only_if: tuple[str, ...]) -> bool:
        result = await self.jobs.update_one({"_id": name, "status": {"$in": list(only_if)}},
                                            {"$set": {"status": status, "updated_at": time.time()}})
        return result.modified_count == 1

    # ---- template notifications (server/notify.py) ---------------------------------------------

    async def notify_recipients(self, target: dict, after: str, limit: int) -> list[str]:
        """The next `limit` openids of a job's target after `after`, in openid order."""
        if "to" in target:
            return [o for o in sorted(set(target["to"])) if o > after][:limit]
        query: dict[str, Any] = {"subscribed": True, "openid": {"$gt": after}}
        if "tag" in target:
            query["tags"] = target["tag"]
        docs = await self.users.find(query, {"openid": 1, "_id": 0}).sort("openid", ASCENDING).limit(limit).to_list()
        return [doc["openid"] for doc in docs]

    async def count_recipients(self, target: dict) -> int:
        if "to" in target:
            return len(set(target["to"]))
        query: dict[str, Any] = {"subscribed": True}
        if "tag" in target:
            query["tags"] = target["tag"]
        return await self._count("users", query)

    async def notified(self, job: str, openids: list[str]) -> set[str]:
        """Which of `openids` already have an outcome for `job` (a resumed job skips them)."""
        ids = [f"{job}:{openid}" for openid in openids]
        return {doc["openid"] async for doc in self.notify_sends.find({"_id": {"$in": ids}}, {"openid": 1})}

    async def record_notified(self, outcomes: list[dict]) -> None:
        """One document per recipient and job: `_id` job:openid, so writing one twice is a no-op."""
        if not outcomes:
            return
        try:
            await self.notify_sends.insert_many(outcomes, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        # A delivery event can come back before its send is written: it waited in notify_events.
        msgids = [o["msgid"] for o in outcomes if o.get("msgid")]
        early = await self.notify_events.find({"_id": {"$in": msgids}}).to_list() if msgids else []
        for event in early:
            await self.notify_sends.update_one({"msgid": event["_id"]}, {"$set": {"delivery": event["status"]}})
        if early:
            await self.notify_events.delete_many({"_id": {"$in": [e["_id"] for e in early]}})

    async def record_template_event(self, msgid: int, status: str) -> bool:
        """TEMPLATESENDJOBFINISH (§13.4): the delivery outcome onto the send with that msgid, or
        kept aside until that send is written (record_notified picks it up); False then."""
        result = await self.notify_sends.update_one({"msgid": msgid}, {"$set": {"delivery": status}})
        if result.matched_count == 1:
            return True
        await self.notify_events.update_one({"_id": msgid}, {"$set": {"status": status, "at": utcnow()}}, upsert=True)
        return False

    async def notify_outcomes(self, job: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        async for doc in self.notify_sends.find({"job": job}, {"status": 1, "delivery": 1}):
            counts[doc["status"]] = counts.get(doc["status"], 0) + 1
            if doc.get("delivery"):
                key = "delivered" if doc["delivery"] == "success" else "delivery_failed"
                counts[key] = counts.get(key, 0) + 1
        return counts

    # ---- the funnel (server/funnel.py) ---------------------------------------------------------

    async def add_funnel_counts(self, counts: dict[tuple[int, str, str], int]) -> None:
        """Adds (day, entry key, stage) counts: one $inc per day and entry, in one bulk write.

        Top-level fields (`n_tap`), not a `counts` sub-document: the embedded server's upsert
        stores a dotted `$inc` path as a literal field name and then refuses the next one.
        """
        per_doc: dict[tuple[str, str], dict[str, int]] = {}
        for (day, key, stage), n in counts.items():
            per_doc.setdefault((day, key), {})[f"n_{stage}"] = n
        await self.funnel.bulk_write([
            UpdateOne({"_id": f"f:{key}:{day}"}, {"$inc": incs, "$setOnInsert": {"day": day, "key": key}}, upsert=True)
            for (day, key), incs in per_doc.items()], ordered=False)

    async def funnel_days(self, key: str | None, first_day: int) -> list[dict]:
        """Counter documents from `first_day` (yyyymmdd) on, of one entry or all."""
        query: dict[str, Any] = {"day": {"$gte": first_day}}
        if key is not None:
            query["key"] = key
        return await self.funnel.find(query).to_list()

    async def save_job(self, name: str, holder: str, fields: dict) -> bool:
        """Records progress while `holder` still holds the job; False when it lost the lease."""
        result = await self.jobs.update_one({"_id": name, "holder": holder},
                                            {"$set": {**fields, "updated_at": time.time()}})
        return result.matched_count == 1

    async def record_login(self, openid: str, scope: str, unionid: str | None, profile: dict | None,
                           web_token: dict | None = None, op_id: str | None = None) -> None:
        """Upserts the follower after a successful authorization, in one write: a process killed
        at any moment leaves either the old record or the new one, never half of it.

        With `op_id` the write is idempotent: a retry of a write whose answer was lost (MongoDB
        went away mid-call) finds its id on the record and does not count the login twice.
        """
        if op_id is not None:
            done = await self.users.find_one({"openid": openid}, {"last_login_op": 1})
            if done is not None and done.get("last_login_op") == op_id:
                return
        fields: dict[str, Any] = {"scope": scope}
        if op_id is not None:
            fields["last_login_op"] = op_id
        website_only = None
        if unionid:
            fields["unionid"] = unionid
            # The person signed in on the website before (record_web_login kept them apart for
            # want of a follower record): from now on one person, one document.
            website_only = await self.users.find_one({"unionid": unionid, "source": "website"},
                                                     {"openid": 1, "web_openid": 1})
            if website_only is not None:
                fields["web_openid"] = website_only.get("web_openid") or website_only["openid"]
        if profile:
            fields.update({k: profile[k] for k in USER_PROFILE_FIELDS if k in profile})
        if web_token:
            fields["web_token"] = web_token  # sealed by server/sealing.py before it gets here
        await self.users.update_one(
            {"openid": openid},
            {
                "$set": fields,
                "$currentDate": {"last_login_at": True},
                "$inc": {"login_count": 1},
                "$setOnInsert": {"created_at": utcnow()},
            },
            upsert=True,
        )
        if website_only is not None:
            # After the follower record holds web_openid, so a crash in between loses nothing.
            await self.users.delete_one({"_id": website_only["_id"], "source": "website"})
        await self._log_login(openid)

    async def record_web_login(self, web_openid: str, unionid: str | None, profile: dict | None) -> str:
        """A sign-in through the website app (docs/wechat-protocol.md §16.4); returns the openid
        that names the person's record from now on.

        With a unionid that an official-account record carries, that record gains `web_openid`
        (one person, one document); its `openid` is never replaced by the website's. Without
        one, the person gets a record of their own, keyed by the website openid and marked
        `source: "website"`.
        """
        fields: dict[str, Any] = {"web_openid": web_openid}
        if profile:
            fields.update({k: profile[k] for k in USER_PROFILE_FIELDS if k in profile})
        if unionid:
            candidates = await self.users.find({"unionid": unionid}, {"openid": 1, "source": 1}).to_list()
            followers = [doc for doc in candidates if doc.get("source") != "website"]
            if followers:
                openid = followers[0]["openid"]
                # The profile the follower gave the account wins; the website's fills only gaps.
                keep = await self.users.find_one({"openid": openid}, {k: 1 for k in USER_PROFILE_FIELDS})
                update = {k: v for k, v in fields.items() if k == "web_openid" or not (keep or {}).get(k)}
                await self.users.update_one({"openid": openid}, {"$set": update, "$currentDate": {"last_login_at": True},
                                                                 "$inc": {"login_count": 1}})
                await self._log_login(openid)
                return openid
            fields["unionid"] = unionid
        await self.users.update_one(
            {"openid": web_openid},
            {"$set": {**fields, "source": "website", "scope": "snsapi_login"}, "$currentDate": {"last_login_at": True},
             "$inc": {"login_count": 1}, "$setOnInsert": {"created_at": utcnow()}},
            upsert=True,
        )
        await self._log_login(web_openid)
        return web_openid

    async def _log_login(self, openid: str) -> None:
        # The login history feeds the admin chart only; losing one entry loses no user data.
        try:
            await self.logins.insert_one({"openid": openid, "at": utcnow()})
        except Exception as exc:
            log.warning("login history entry not written: %s", type(exc).__name__)

    async def set_user_fields(self, openid: str, fields: dict) -> bool:
        result = await self.users.update_one({"openid": openid}, {"$set": fields})
        return result.matched_count == 1

    async def find_users(self, query: str = "", skip: int = 0, limit: int = 50) -> list[dict]:
        docs = await self.users.find(self._user_filter(query), {"web_token": 0}).sort(
            "last_login_at", DESCENDING
        ).skip(skip).limit(limit).to_list()
        return [_user(doc) for doc in docs]

    async def count_users(self, query: str = "") -> int:
        return await self._count("users", self._user_filter(query))

    @staticmethod
    def _user_filter(query: str) -> dict:
        query = query.strip()
        if not query:
            return {}
        # Nickname search is a case-insensitive substring; the text is escaped so it is never a pattern.
        return {"$or": [{"openid": query}, {"unionid": query}, {"nickname": {"$regex": re.escape(query), "$options": "i"}}]}

    async def user_counts(self) -> dict[str, int]:
        week_ago = utcnow() - datetime.timedelta(days=7)
        return {
            "total": await self._count("users", {}),
            "subscribed": await self._count("users", {"subscribed": True}),
            "active_7d": await self._count("users", {"last_login_at": {"$gte": week_ago}}),
        }

    async def _count(self, collection: str, query: dict) -> int:
        # The `count` command, not count_documents: nx-27017's aggregation (which count_documents
        # uses) misses dates written by $currentDate; both servers answer `count` correctly.
        result = await self.db.command("count", collection, query=query)
        return int(result["n"])

    async def daily_logins(self, days: int = 30) -> list[tuple[datetime.date, int]]:
        """Logins per UTC day for the last `days` days, oldest first, zero-filled."""
        today = utcnow().date()
        start = today - datetime.timedelta(days=days - 1)
        since = datetime.datetime.combine(start, datetime.time(), datetime.timezone.utc)
        counts: dict[datetime.date, int] = {}
        async for doc in self.logins.find({"at": {"$gte": since}}, {"at": 1, "_id": 0}):
            at = doc["at"]
            if isinstance(at, datetime.datetime):
                counts[at.date()] = counts.get(at.date(), 0) + 1
        return [(start + datetime.timedelta(days=i), counts.get(start + datetime.timedelta(days=i), 0)) for i in range(days)]

    # ---- one-time OAuth state tokens ----------------------------------------------------------

    async def create_oauth_state(self, token: str, key: str | None, target: str, scope: str, retry: int = 0) -> None:
        await self.oauth_states.insert_one(
            {
                "_id": token,
                "key": key,
                "target": target,
                "scope": scope,
                "retry": retry,
                "code": None,     # set once, by the callback that exchanges the code
                "result": None,   # that callback's outcome, reused by a duplicate callback
                "expires_at": utcnow() + datetime.timedelta(seconds=STATE_TOKEN_TTL),
            }
        )

    async def peek_oauth_state(self, token: str, include_expired: bool = False) -> dict | None:
        """The flow of a state token; expired tokens count as absent (TTL deletion may lag)."""
        query: dict = {"_id": token}
        if not include_expired:
            query["expires_at"] = {"$gt": utcnow()}
        return await self.oauth_states.find_one(query)

    async def claim_oauth_code(self, token: str, code: str) -> dict | None:
        """The flow of an unexpired state token, for exactly one callback per token: the one allowed
        to exchange `code`. None for every other callback (and for unknown or expired tokens)."""
        return await self.oauth_states.find_one_and_update(
            {"_id": token, "code": None, "expires_at": {"$gt": utcnow()}}, {"$set": {"code": code}}
        )

    async def finish_oauth_state(self, token: str, result: dict) -> None:
        await self.oauth_states.update_one({"_id": token}, {"$set": {"result": result}})

    # ---- scan login: a PC browser signed in by a phone that scanned its code ------------------

    async def create_scan(self, doc: dict) -> None:
        await self.scan_logins.insert_one(doc)

    async def get_scan(self, token: str) -> dict | None:
        """The scan token, expired or not (the caller says which)."""
        return await self.scan_logins.find_one({"_id": token})

    async def move_scan(self, token: str, status: str, to: str, match: dict | None = None,
                        fields: dict | None = None) -> dict | None:
        """Moves an unexpired scan token from `status` to `to` (and sets `fields`) in one atomic
        step; None when it was not in that state, or `match` did not hold, or it expired."""
        query = {"_id": token, "status": status, "expires_at": {"$gt": utcnow()}, **(match or {})}
        # changed_at is Unix seconds: a $set datetime would be a string on nx-27017 (see above).
        return await self.scan_logins.find_one_and_update(
            query, {"$set": {"status": to, "changed_at": time.time(), **(fields or {})}},
            return_document=ReturnDocument.AFTER)

    async def scan_changes(self, since: float) -> list[tuple[str, str]]:
        """(token, status) of every scan token that changed after `since` (Unix seconds).

        Waiting pages learn of changes made by other processes from this: its cost follows the
        number of changes, not the number of pages waiting.
        """
        cursor = self.scan_logins.find({"changed_at": {"$gt": since}}, {"status": 1})
        return [(doc["_id"], doc.get("status")) async for doc in cursor]

    # ---- access_token and jsapi_ticket (a lease so that one process refreshes at a time) -------
    # `key` is the document's _id: the appid for the access_token, f"{appid}:jsapi" for the ticket
    # (server/leased.py); the value is in `token` either way.

    async def cached_token(self, key: str) -> dict | None:
        return await self.tokens.find_one({"_id": key})

    async def take_token_lease(self, key: str, holder: str, seconds: float) -> dict | None:
        """The document as the lease was taken (so the caller sees a value stored a moment ago
        by the previous holder), or None while another holder's lease runs."""
        now = time.time()
        await self.tokens.update_one({"_id": key}, {"$setOnInsert": {"lease_until": 0.0}}, upsert=True)
        doc = await self.tokens.find_one_and_update(
            {"_id": key, "lease_until": {"$lt": now}},
            {"$set": {"lease_until": now + seconds, "lease_holder": holder}},
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def store_token(self, key: str, token: str, expires_at: float) -> None:
        await self.tokens.update_one(
            {"_id": key},
            {"$set": {"token": token, "expires_at": expires_at, "lease_until": 0.0}, "$currentDate": {"fetched_at": True}},
            upsert=True,
        )

    async def expire_token(self, key: str, token: str) -> bool:
        """Marks the cached token expired only if it is still the one that failed."""
        result = await self.tokens.update_one({"_id": key, "token": token}, {"$set": {"expires_at": 0.0}})
        return result.modified_count == 1

    async def release_token_lease(self, key: str, holder: str) -> None:
        """Ends a lease early (the refresh failed), only if `holder` still holds it."""
        await self.tokens.update_one({"_id": key, "lease_holder": holder}, {"$set": {"lease_until": 0.0}})

    # ---- admin login attempts (rate limit, DESIGN.md "Admin") -----------------------------------
    # One insert-only document per failed attempt or lock, so `at`/`until` are real datetimes
    # that a TTL index can clean up; every query also checks the time itself (DESIGN.md "Data").

    async def ensure_admin_indexes(self, keep_seconds: int) -> None:
        await self.admin_attempts.create_index([("ip", ASCENDING), ("at", DESCENDING)])
        await self.admin_attempts.create_index("at", expireAfterSeconds=keep_seconds)
        await self.admin_sessions.create_index("expires_at", expireAfterSeconds=0)
        await self.admin_sessions.create_index("admin")
        await self.admins.create_index("wechat_openid", sparse=True)
        await self.admin_invites.create_index("expires_at", expireAfterSeconds=0)
        await self.admin_invites.create_index("admin")

    async def create_admin_session(self, sid: str, expires_at: datetime.datetime, admin: str) -> None:
        await self.admin_sessions.insert_one({"_id": sid, "admin": admin, "expires_at": expires_at,
                                              "created_at": utcnow()})

    async def admin_session_alive(self, sid: str, admin: str, now: datetime.datetime) -> bool:
        # The expiry is checked here, not left to the TTL index (DESIGN.md "Data").
        return await self.admin_sessions.find_one({"_id": sid, "admin": admin, "expires_at": {"$gt": now}}) is not None

    async def end_admin_session(self, sid: str) -> None:
        await self.admin_sessions.delete_one({"_id": sid})

    async def end_admin_sessions_of(self, admin: str) -> int:
        """Ends every session of one admin (password changed, disabled): every copy of the cookie."""
        return (await self.admin_sessions.delete_many({"admin": admin})).deleted_count

    # ---- named admins and their invitations (server/admins.py) ----------------------------------
    # Times changed by update are Unix seconds (see the notes at the top); an invitation's
    # expires_at is written once, at insert, so it is a real datetime a TTL index can clean up.

    async def get_admin(self, name: str) -> dict | None:
        return await self.admins.find_one({"_id": name})

    async def list_admins(self, limit: int = 1000) -> list[dict]:
        return await self.admins.find({}).sort("_id", ASCENDING).limit(limit).to_list()

    async def insert_admin(self, doc: dict) -> bool:
        """False when an admin of that name exists already."""
        try:
            await self.admins.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def update_admin(self, name: str, fields: dict, *, only_if: dict | None = None,
                           inc: dict | None = None) -> dict | None:
        """Sets `fields` (and increments `inc`) on one admin in one step; None when `only_if` did not hold."""
        update: dict = {"$set": fields}
        if inc:
            update["$inc"] = inc
        return await self.admins.find_one_and_update({"_id": name, **(only_if or {})}, update,
                                                     return_document=ReturnDocument.AFTER)

    async def count_admins(self, query: dict) -> int:
        return await self._count("admins", query)

    async def admins_with_openid(self, openid: str) -> list[dict]:
        return await self.admins.find({"wechat_openid": openid}).limit(10).to_list()

    async def create_admin_invite(self, doc: dict) -> None:
        await self.admin_invites.insert_one(doc)

    async def drop_admin_invites(self, admin: str) -> None:
        await self.admin_invites.delete_many({"admin": admin})

    async def get_admin_invite(self, digest: str) -> dict | None:
        return await self.admin_invites.find_one({"_id": digest})

    async def use_admin_invite(self, digest: str, now: datetime.datetime, used_at: float) -> dict | None:
        """Marks an unused, unexpired invitation used, once: a second use finds nothing."""
        return await self.admin_invites.find_one_and_update(
            {"_id": digest, "used_at": 0.0, "expires_at": {"$gt": now}}, {"$set": {"used_at": used_at}},
            return_document=ReturnDocument.AFTER)

    async def record_admin_failure(self, ip: str, at: datetime.datetime) -> None:
        await self.admin_attempts.insert_one({"ip": ip, "kind": "failure", "at": at})

    async def count_admin_failures(self, ip: str, since: datetime.datetime) -> int:
        """Failed attempts from `ip` strictly after `since`."""
        return await self._count("admin_attempts", {"ip": ip, "kind": "failure", "at": {"$gt": since}})

    async def count_all_admin_failures(self, since: datetime.datetime) -> int:
        """Failed attempts from every address strictly after `since`."""
        return await self._count("admin_attempts", {"kind": "failure", "at": {"$gt": since}})

    async def forget_admin_failure(self, ip: str, at: datetime.datetime) -> None:
        """Takes back an attempt counted before it could run (the server was too busy)."""
        await self.admin_attempts.delete_one({"ip": ip, "kind": "failure", "at": at})

    async def record_admin_lock(self, ip: str, at: datetime.datetime, until: datetime.datetime) -> None:
        await self.admin_attempts.insert_one({"ip": ip, "kind": "lock", "at": at, "until": until})

    async def admin_lock(self, ip: str, active_at: datetime.datetime | None = None) -> dict | None:
        """The latest lock of `ip`; with `active_at`, only a lock still in force at that time."""
        query: dict = {"ip": ip, "kind": "lock"}
        if active_at is not None:
            query["until"] = {"$gt": active_at}
        docs = await self.admin_attempts.find(query).sort("at", DESCENDING).limit(1).to_list()
        return docs[0] if docs else None

    async def clear_admin_failures(self, ip: str) -> None:
        await self.admin_attempts.delete_many({"ip": ip, "kind": "failure"})

    # ---- audit ------------------------------------------------------------------------------

    async def record_audit(self, who: str, action: str, target: str, before: Any, after: Any) -> None:
        await self.audit.insert_one(
            {"who": who, "action": action, "target": target, "before": before, "after": after, "at": utcnow()}
        )

    async def recent_audit(self, limit: int = 100) -> list[dict]:
        return await self.audit.find({}).sort("at", DESCENDING).limit(limit).to_list()
