"""Admin sign-in: the Argon2 password checks, the login throttle and the admin sessions, both in MongoDB.

Who the admins are and what they may do is server/admins.py; this module decides who is signed in."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger("wxauth.admin")

ADMIN_NAME = "admin"       # the bootstrap owner (WX_ADMIN_PASSWORD); also the login form's default name
MIN_PASSWORD = 10         # a named admin's own password (the bootstrap one is the operator's choice)
ADMIN_COOKIE = "wx_admin"
# The session ends 8 h after sign-in, or after 30 min without a request, whichever comes first
# (OWASP session management: absolute and idle timeouts, CWE-613).
SESSION_SECONDS = 8 * 3600
IDLE_SECONDS = 30 * 60
TOUCH_SECONDS = 60       # the cookie's "last seen" is rewritten at most once a minute
CLOCK_SKEW = 60          # processes' clocks may differ a little
# Brute-force protection (CWE-307): 5 failures from one address lock sign-in for a minute.
MAX_FAILURES = 5
LOCK_SECONDS = 60
FAILURE_WINDOW = 15 * 60  # failures older than this are forgotten
MAX_PASSWORD = 1024       # longer input is refused without spending a hash on it
# Across all addresses (a botnet spreads its guesses): this many failures in a minute pause
# sign-in for everyone for GLOBAL_PAUSE seconds. The owner waits a minute; guessing stops.
GLOBAL_MAX_FAILURES = 50
GLOBAL_PAUSE = 60
# Argon2 takes ~64 MiB and ~50 ms per verification: at most this many run at once per process,
# and at most ARGON2_QUEUE wait; any more are told to retry instead of piling up memory.
ARGON2_SLOTS = 2
ARGON2_QUEUE = 8
BUSY_RETRY = 1.0


def throttle_key(ip: str) -> str:
    """The address sign-in attempts are counted under: the IP, or its /64 for IPv6.

    One IPv6 host usually holds a whole /64 and can change its address at will; counting each
    address alone would give it 2^64 x 5 attempts.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


@dataclasses.dataclass
class LoginResult:
    ok: bool
    name: str = ""            # who signed in, when ok
    locked_for: float = 0.0   # > 0: sign-in is locked for this many more seconds
    attempts_left: int = MAX_FAILURES


def _to_datetime(seconds: float) -> datetime.datetime:
    # MongoDB keeps milliseconds; rounding here keeps "strictly after" comparisons exact.
    return datetime.datetime.fromtimestamp(round(seconds, 3), datetime.timezone.utc)


class AdminAuth:
    """One per process. `clock` is injectable so tests move time instead of sleeping."""

    def __init__(self, config, store, accounts, *, clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None):
        self.config = config
        self.store = store
        self.accounts = accounts  # server.admins.AdminAccounts
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._hash: str | None = None
        self._decoy: str | None = None  # verified against for unknown names: same cost, no hint
        self._hash_lock = asyncio.Lock()
        self._indexes_ready = False
        self._verifying: set[str] = set()      # addresses with a verification running now
        self._argon2 = asyncio.Semaphore(ARGON2_SLOTS)
        self._argon2_waiting = 0
        self.prepare_task: asyncio.Task | None = None
        self._secret = (config.cookie_secret or "").encode()
        # Binds the bootstrap owner's sessions to the configured password: changing
        # WX_ADMIN_PASSWORD ends them all.
        self._fingerprint = self._sign("wxauth-admin:" + (config.admin_password or ""))

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:16]

    def fingerprint(self, account: dict) -> str:
        """What a session cookie must carry for `account`: it changes with the account's password."""
        if account.get("bootstrap"):
            return self._fingerprint
        return self._sign(f"wxauth-admin:{account['_id']}:{account.get('pwv', 0)}")

    @property
    def password_configured(self) -> bool:
        return bool(self.config.admin_password)

    async def enabled(self) -> bool:
        """Admin exists when WX_ADMIN_PASSWORD is set or an account is active or invited (README "Admin")."""
        return await self.accounts.exist()

    # ---- the password ---------------------------------------------------------------------------

    async def password_hash(self) -> str:
        """WX_ADMIN_PASSWORD as an Argon2 hash: used as given when it is one, else hashed once."""
        raw = self.config.admin_password or ""
        if raw.startswith("$argon2"):
            return raw
        async with self._hash_lock:
            if self._hash is None:
                # Argon2 is slow on purpose; it runs off the event loop (tornado demos/blog).
                self._hash = await asyncio.get_running_loop().run_in_executor(None, self.hasher.hash, raw)
        return self._hash

    async def prepare(self) -> None:
        """Hashes a plain password ahead of the first sign-in."""
        if self.password_configured:
            await self.password_hash()

    async def verify_password(self, candidate: str, name: str = ADMIN_NAME) -> bool:
        """Whether `candidate` is the password of the active admin `name` (constant time)."""
        account = await self.accounts.usable(name)
        stored = None
        if account is not None:
            stored = await self.password_hash() if account.get("bootstrap") else account.get("password_hash")
        if not stored:
            # An unknown name costs the same hash as a known one: timing does not tell names apart.
            stored, account = await self._decoy_hash(), None
        if not candidate or len(candidate) > MAX_PASSWORD:
            return False
        ok = await asyncio.get_running_loop().run_in_executor(None, self._verify, stored, candidate)
        return ok and account is not None

    async def _decoy_hash(self) -> str:
        if self._decoy is None:
            self._decoy = await self.hash_password(secrets.token_urlsafe(16))
        return self._decoy

    async def hash_password(self, password: str) -> str:
        # Argon2 is slow on purpose; it runs off the event loop (tornado demos/blog).
        return await asyncio.get_running_loop().run_in_executor(None, self.hasher.hash, password)

    async def set_password(self, name: str, password: str, by: str) -> None:
        """A named admin's new password (10-1024 characters): active from now, every old session ended."""
        if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise ValueError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
        hashed = await self.hash_password(password)
        after = await self.store.update_admin(name, {"password_hash": hashed, "status": "active",
                                                     "updated_at": self.clock()},
                                              only_if={"status": {"$in": ["invited", "active"]}}, inc={"pwv": 1})
        if after is None:
            raise ValueError("this admin account is not active")
        await self.store.end_admin_sessions_of(name)
        await self.store.record_audit(by, "admin.password", name, None, {"status": "active"})
        log.info("admin %s set a new password", name)

    def _verify(self, stored: str, candidate: str) -> bool:
        # argon2's verify compares in constant time (CWE-208).
        try:
            return self.hasher.verify(stored, candidate)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as exc:
            log.error("a stored admin password hash (or WX_ADMIN_PASSWORD) cannot be used (%s); that admin cannot sign in",
                      type(exc).__name__)
            return False

    # ---- the throttle ---------------------------------------------------------------------------

    async def _ensure_indexes(self) -> None:
        if not self._indexes_ready:
            try:
                await self.store.ensure_admin_indexes(FAILURE_WINDOW)
                self._indexes_ready = True
            except Exception as exc:  # the queries check time themselves; TTL only tidies up
                log.warning("could not create the admin_attempts indexes: %s", type(exc).__name__)

    async def locked_for(self, ip: str) -> float:
        """Seconds until `ip` may try again; 0 when it is not locked."""
        now = self.clock()
        lock = await self.store.admin_lock(throttle_key(ip), active_at=_to_datetime(now))
        if lock is None:
            return 0.0
        return max(0.0, round(lock["until"].timestamp() - now, 3))

    async def login(self, ip: str, password: str, name: str = ADMIN_NAME) -> LoginResult:
        await self._ensure_indexes()
        key = throttle_key(ip)
        locked = await self.locked_for(ip)
        if locked > 0:
            # No hash is computed while locked: the attacker learns nothing and costs nothing.
            return LoginResult(ok=False, locked_for=locked, attempts_left=0)
        if key in self._verifying:
            # One verification at a time per address: a burst of parallel guesses would
            # otherwise all pass the check above before the first failure is counted.
            return LoginResult(ok=False, locked_for=BUSY_RETRY, attempts_left=0)
        self._verifying.add(key)
        try:
            return await self._attempt(key, ip, password, name)
        finally:
            self._verifying.discard(key)

    async def _attempt(self, key: str, ip: str, password: str, name: str) -> LoginResult:
        now = self.clock()
        at = _to_datetime(now)
        paused = await self._global_pause(now)
        if paused:
            return LoginResult(ok=False, locked_for=paused, attempts_left=0)
        # The attempt counts before the hash runs (another process sees it at once); a
        # success takes it back.
        await self.store.record_admin_failure(key, at)
        since = _to_datetime(now - FAILURE_WINDOW)
        last_lock = await self.store.admin_lock(key)
        if last_lock is not None and last_lock["at"] > since:
            since = last_lock["at"]
        failures = await self.store.count_admin_failures(key, since)
        if failures > MAX_FAILURES:
            await self.store.record_admin_lock(key, at, _to_datetime(now + LOCK_SECONDS))
            return LoginResult(ok=False, locked_for=float(LOCK_SECONDS), attempts_left=0)
        verdict = await self._bounded_verify(password, name)
        if verdict is None:
            await self.store.forget_admin_failure(key, at)
            return LoginResult(ok=False, locked_for=BUSY_RETRY, attempts_left=MAX_FAILURES - failures + 1)
        if verdict:
            await self.store.clear_admin_failures(key)
            log.info("admin %s signed in from %s", name, ip)
            return LoginResult(ok=True, name=name)
        if failures >= MAX_FAILURES:
            await self.store.record_admin_lock(key, at, _to_datetime(now + LOCK_SECONDS))
            log.warning("admin sign-in from %s locked for %d s after %d failed attempts", key, LOCK_SECONDS, failures)
            return LoginResult(ok=False, locked_for=float(LOCK_SECONDS), attempts_left=0)
        log.warning("failed admin sign-in from %s (%d of %d)", ip, failures, MAX_FAILURES)
        return LoginResult(ok=False, attempts_left=MAX_FAILURES - failures)

    async def _global_pause(self, now: float) -> float:
        """Seconds every address must wait because failures from everywhere passed the limit."""
        recent = await self.store.count_all_admin_failures(_to_datetime(now - GLOBAL_PAUSE))
        if recent < GLOBAL_MAX_FAILURES:
            return 0.0
        log.warning("%d failed admin sign-ins in the last minute from all addresses: pausing sign-in", recent)
        return float(GLOBAL_PAUSE)

    async def _bounded_verify(self, password: str, name: str) -> bool | None:
        """verify_password with a process-wide bound; None when too many are already waiting."""
        if self._argon2_waiting >= ARGON2_QUEUE:
            return None
        self._argon2_waiting += 1
        try:
            async with self._argon2:
                return await self.verify_password(password, name)
        finally:
            self._argon2_waiting -= 1

    # ---- the session: a signed cookie naming a session kept in MongoDB ------------------------------
    # The cookie alone would stay valid until it expires, in every copy of it. With the session
    # in MongoDB, signing out ends it at once everywhere (OWASP session management, CWE-613).

    async def issue_session(self, name: str = ADMIN_NAME) -> str:
        account = await self.accounts.usable(name)
        if account is None:
            raise ValueError(f"admin {name} cannot sign in")
        now = self.clock()
        sid = secrets.token_urlsafe(24)
        await self.store.create_admin_session(sid, _to_datetime(now + SESSION_SECONDS), name)
        return json.dumps({"u": name, "sid": sid, "iat": now, "seen": now, "pw": self.fingerprint(account)})

    def read_session(self, raw: bytes | str | None) -> dict | None:
        """The session in a (signature-checked) cookie value, or None if it is missing or over.

        This checks the cookie itself; load_session also asks MongoDB whether it was ended."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            issued, seen = float(data["iat"]), float(data["seen"])
            fingerprint, sid, name = str(data["pw"]), str(data["sid"]), str(data["u"])
        except (ValueError, KeyError, TypeError):
            return None
        if not sid or not fingerprint or not name:
            return None
        now = self.clock()
        if issued > now + CLOCK_SKEW or now - issued > SESSION_SECONDS or now - seen > IDLE_SECONDS:
            return None
        return {"u": name, "sid": sid, "iat": issued, "seen": seen, "pw": fingerprint}

    async def load_session(self, raw: bytes | str | None) -> dict | None:
        """The live session with the admin's record as it is now: {"cookie", "name", "role", "account"}.

        The record is read on every request, so a disabled admin, a new role or a new password
        takes effect on the next request, in every copy of the cookie."""
        data = self.read_session(raw)
        if data is None:
            return None
        account = await self.accounts.usable(data["u"])
        if account is None or not hmac.compare_digest(data["pw"], self.fingerprint(account)):
            return None
        if not await self.store.admin_session_alive(data["sid"], data["u"], _to_datetime(self.clock())):
            return None
        return {"cookie": data, "name": data["u"], "role": account["role"], "account": account}

    async def end_session(self, raw: bytes | str | None) -> None:
        data = self.read_session(raw)
        if data is not None:
            await self.store.end_admin_session(data["sid"])

    def needs_touch(self, session: dict) -> bool:
        return self.clock() - float(session["cookie"]["seen"]) > TOUCH_SECONDS

    def touched(self, session: dict) -> str:
        return json.dumps({**session["cookie"], "seen": self.clock()})
