"""Named admin accounts in MongoDB (`admins`): roles, one-time invitations, WeChat bindings, the last-owner rule.

An account is {_id: name, role, status, password_hash, pwv, wechat_openid, created_at, updated_at}:
status is "invited" (no password yet), "active" or "disabled"; `pwv` counts password changes and
is part of every session cookie's fingerprint, so a new password ends the old sessions.

The bootstrap owner `admin` is configured, not stored: it exists while WX_ADMIN_PASSWORD is set
and is always an active owner. A stored document of that name (status "bootstrap") only keeps
its WeChat binding.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import secrets
import time
from typing import Callable

from server.i18n import T
from server.logtags import short_openid
from server.roles import ROLES, is_name

log = logging.getLogger("wxauth.admin")

BOOTSTRAP = "admin"
INVITE_SECONDS = 24 * 3600
# Statuses that make admin exist (so /admin is not a 404 without WX_ADMIN_PASSWORD).
LIVE = ("active", "invited")


class AdminError(Exception):
    """A change that cannot be made; its Text (args[0]) says why, for a page (say(exc)) or a terminal
    (i18n.say(exc, i18n.command_locale())); str(exc) is English."""


def invite_digest(token: str) -> str:
    # Only the hash is stored: a copy of the database does not hold usable invitation links.
    return hashlib.sha256(("wxauth-invite:" + token).encode("utf-8", "replace")).hexdigest()


def _as_datetime(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(round(seconds, 3), datetime.timezone.utc)


class AdminAccounts:
    """One per process (and per command). `clock` is injectable so tests move time instead of sleeping."""

    def __init__(self, config, store, *, clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.clock = clock

    @property
    def bootstrap_on(self) -> bool:
        return bool(self.config.admin_password)

    # ---- reading ---------------------------------------------------------------------------------

    async def get(self, name: str) -> dict | None:
        """The account as it stands now (the bootstrap owner included), or None."""
        if not is_name(name):
            return None
        doc = await self.store.get_admin(name)
        if name == BOOTSTRAP:
            if not self.bootstrap_on:
                return None
            return {"_id": BOOTSTRAP, "role": "owner", "status": "active", "bootstrap": True, "pwv": 0,
                    "wechat_openid": (doc or {}).get("wechat_openid")}
        return doc

    async def usable(self, name: str) -> dict | None:
        """The account if it may sign in and act now (active), else None."""
        doc = await self.get(name)
        return doc if doc is not None and doc.get("status") == "active" else None

    async def exist(self) -> bool:
        """Whether /admin exists: WX_ADMIN_PASSWORD is set, or an account is active or invited."""
        if self.bootstrap_on:
            return True
        return await self.store.count_admins({"status": {"$in": list(LIVE)}}) > 0

    async def all(self) -> list[dict]:
        stored = [d for d in await self.store.list_admins() if d["_id"] != BOOTSTRAP]
        boot = await self.get(BOOTSTRAP)
        return ([boot] if boot else []) + stored

    async def by_openid(self, openid: str) -> dict | None:
        """The active admin whose WeChat is `openid`, or None."""
        for doc in await self.store.admins_with_openid(openid):
            account = await self.usable(doc["_id"])
            if account is not None and account.get("wechat_openid") == openid:
                return account
        return None

    async def owners_left(self) -> int:
        return await self.store.count_admins({"role": "owner", "status": "active", "_id": {"$ne": BOOTSTRAP}}) \
            + (1 if self.bootstrap_on else 0)

    # ---- invitations -----------------------------------------------------------------------------

    async def invite(self, name: str, role: str, by: str) -> str:
        """Creates an invited account (or renews the invitation of one not yet accepted); the token, once."""
        _check_name(name)
        if role not in ROLES:
            raise AdminError(T("role must be one of %(roles)s", roles=", ".join(ROLES)))
        if name == BOOTSTRAP:
            raise AdminError(T("“%(name)s” is the bootstrap owner set by WX_ADMIN_PASSWORD; choose another name",
                               name=BOOTSTRAP))
        now = self.clock()
        doc = {"_id": name, "role": role, "status": "invited", "password_hash": None, "pwv": 0,
               "wechat_openid": None, "created_at": now, "updated_at": now, "created_by": by}
        if not await self.store.insert_admin(doc):
            existing = await self.store.get_admin(name)
            if existing is None or existing.get("status") != "invited":
                raise AdminError(T("an admin named “%(name)s” exists already", name=name))
            before = existing
            await self.store.update_admin(name, {"role": role, "updated_at": now}, only_if={"status": "invited"})
        else:
            before = None
        token = await self._new_invitation(name, by, now)
        await self.store.record_audit(by, "admin.invite", name, _public(before), {"role": role, "status": "invited"})
        log.info("admin %s invited as %s", name, role)
        return token

    async def reinvite(self, name: str, by: str) -> str:
        """A new invitation for an account that exists: a forgotten password, or a disabled admin
        let back in. The password is cleared and every session ends at once; the role and the
        bound WeChat stay. Also for the last active owner: from the command line this is the way
        back in for an owner who lost their password."""
        before = await self._changeable(name)
        now = self.clock()
        after = await self.store.update_admin(name, {"status": "invited", "password_hash": None, "updated_at": now},
                                              inc={"pwv": 1})
        await self.store.end_admin_sessions_of(name)
        token = await self._new_invitation(name, by, now)
        await self.store.record_audit(by, "admin.reinvite", name, _public(before), _public(after))
        log.info("admin %s invited again (was %s)", name, before.get("status"))
        return token

    async def _new_invitation(self, name: str, by: str, now: float) -> str:
        await self.store.drop_admin_invites(name)  # only the newest link works
        token = secrets.token_urlsafe(32)
        await self.store.create_admin_invite({"_id": invite_digest(token), "admin": name, "used_at": 0.0,
                                              "expires_at": _as_datetime(now + INVITE_SECONDS),
                                              "created_at": _as_datetime(now), "by": by})
        return token

    def invite_url(self, token: str) -> str:
        return f"{self.config.app_host}/admin/invite/{token}"

    async def invitation(self, token: str) -> tuple[dict | None, str | None]:
        """(the invited account, None) while the link may be used; else (None, "unknown"|"expired"|"used")."""
        digest = invite_digest(token)
        doc = await self.store.get_admin_invite(digest)
        # The lookup is by hash; comparing again in constant time costs nothing (CWE-208).
        if doc is None or not hmac.compare_digest(doc["_id"], digest):
            return None, "unknown"
        if doc.get("used_at"):
            return None, "used"
        if doc["expires_at"].timestamp() <= self.clock():
            return None, "expired"
        account = await self.store.get_admin(doc["admin"])
        if account is None or account.get("status") != "invited":
            return None, "used"
        return account, None

    async def use_invitation(self, token: str) -> dict:
        """Spends the invitation (once, atomically); the account to set a password for."""
        now = self.clock()
        doc = await self.store.use_admin_invite(invite_digest(token), _as_datetime(now), now)
        if doc is None:
            raise AdminError(T("This invitation was already used or has expired."))
        account = await self.store.get_admin(doc["admin"])
        if account is None or account.get("status") != "invited":
            raise AdminError(T("This invitation is no longer valid."))
        return account

    # ---- changes by an owner ---------------------------------------------------------------------

    async def set_role(self, name: str, role: str, by: str) -> dict:
        if role not in ROLES:
            raise AdminError(T("role must be one of %(roles)s", roles=", ".join(ROLES)))
        before = await self._changeable(name)
        after = await self.store.update_admin(name, {"role": role, "updated_at": self.clock()})
        await self._keep_an_owner(name, before, "demote")
        await self.store.record_audit(by, "admin.role", name, _public(before), _public(after))
        log.info("admin %s is now %s", name, role)
        return after

    async def disable(self, name: str, by: str) -> dict:
        before = await self._changeable(name)
        after = await self.store.update_admin(name, {"status": "disabled", "updated_at": self.clock()})
        await self._keep_an_owner(name, before, "disable")
        await self.store.end_admin_sessions_of(name)
        await self.store.drop_admin_invites(name)
        await self.store.record_audit(by, "admin.disable", name, _public(before), _public(after))
        log.info("admin %s disabled", name)
        return after

    async def _changeable(self, name: str) -> dict:
        _check_name(name)
        if name == BOOTSTRAP:
            raise AdminError(T("“%(name)s” is the bootstrap owner set by WX_ADMIN_PASSWORD: unset it to remove it",
                               name=BOOTSTRAP))
        doc = await self.store.get_admin(name)
        if doc is None:
            raise AdminError(T("there is no admin named “%(name)s”", name=name))
        return doc

    async def _keep_an_owner(self, name: str, before: dict, verb: str) -> None:
        """The last active owner may not stop being one: put the change back and say so.

        Checked after the write, so two owners demoting each other at once both see no owner
        left and both are put back (failing closed) rather than both succeeding."""
        if before.get("role") != "owner" or before.get("status") != "active":
            return
        if await self.owners_left() > 0:
            return
        await self.store.update_admin(name, {"role": before["role"], "status": before["status"],
                                             "updated_at": self.clock()})
        if verb == "demote":
            raise AdminError(T("“%(name)s” is the last active owner and cannot be demoted: make another admin an owner "
                               "first", name=name))
        raise AdminError(T("“%(name)s” is the last active owner and cannot be disabled: make another admin an owner "
                           "first", name=name))

    # ---- WeChat ----------------------------------------------------------------------------------

    async def bind(self, name: str, openid: str, by: str) -> None:
        """Binds `openid` (the follower who confirmed on their phone) to the admin `name`."""
        other = await self.by_openid(openid)
        if other is not None and other["_id"] != name:
            raise AdminError(T("This WeChat is already bound to another admin."))
        now = self.clock()
        if name == BOOTSTRAP:
            if not await self.store.insert_admin({"_id": BOOTSTRAP, "status": "bootstrap", "role": "owner",
                                                  "wechat_openid": openid, "created_at": now, "updated_at": now}):
                await self.store.update_admin(BOOTSTRAP, {"wechat_openid": openid, "updated_at": now})
        elif await self.store.update_admin(name, {"wechat_openid": openid, "updated_at": now},
                                           only_if={"status": "active"}) is None:
            raise AdminError(T("This admin account is not active."))
        await self.store.record_audit(by, "admin.bind", name, None, {"wechat": short_openid(openid)})
        log.info("admin %s bound WeChat %s", name, short_openid(openid))

    async def unbind(self, name: str, by: str) -> None:
        """Forgets the WeChat bound to `name` (a lost or changed phone): scan sign-in stops at once."""
        now = self.clock()
        if await self.store.update_admin(name, {"wechat_openid": None, "updated_at": now}) is None:
            raise AdminError(T("there is no admin named “%(name)s”", name=name))
        await self.store.record_audit(by, "admin.unbind", name, None, None)
        log.info("admin %s unbound their WeChat", name)

    async def refuse_scan(self, openid: str, ip: str) -> None:
        """A scan sign-in by a WeChat bound to no active admin: refused, and on the audit log."""
        who = short_openid(openid)
        await self.store.record_audit(f"{who}@{ip}", "admin.scan_refused", who, None, None)
        log.warning("admin scan sign-in refused for %s (bound to no active admin)", who)


def _check_name(name: str) -> None:
    if not is_name(name):
        raise AdminError(T("name must be 1-32 characters of a-z 0-9 _ . -"))


def _public(doc: dict | None) -> dict | None:
    """An account as the audit log keeps it: never the password hash, never the full openid."""
    if doc is None:
        return None
    shown = {k: doc.get(k) for k in ("role", "status") if k in doc}
    if doc.get("wechat_openid"):
        shown["wechat"] = short_openid(doc["wechat_openid"])
    return shown
