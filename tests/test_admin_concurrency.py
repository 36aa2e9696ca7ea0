"""Admin sign-in under concurrency: parallel guesses, IPv6 /64, a botnet, and Argon2's memory."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conftest import ADMIN_PASSWORD
from server import admin_auth as module
from server.admin_auth import MAX_FAILURES, throttle_key


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


def count_verifications(auth) -> dict:
    """Wraps the Argon2 check: how many ran, and the most that ran at once (in executor threads)."""
    seen = {"calls": 0, "now": 0, "most": 0}
    lock = threading.Lock()
    real = auth._verify

    def verify(stored, candidate):
        with lock:
            seen["calls"] += 1
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            time.sleep(0.02)  # Argon2's real cost, so that verifications overlap as they would
            return real(stored, candidate)
        finally:
            with lock:
                seen["now"] -= 1

    auth._verify = verify
    return seen


@pytest.mark.gen_test(timeout=60)
async def test_a_burst_of_parallel_guesses_gets_no_more_hashes_than_the_limit(admin_auth):
    await admin_auth.prepare()
    seen = count_verifications(admin_auth)
    results = await asyncio.gather(*(admin_auth.login("203.0.113.7", f"guess{i}") for i in range(30)))
    assert not any(r.ok for r in results)
    assert seen["calls"] <= MAX_FAILURES and seen["most"] == 1
    # The burst ends locked, also for the right password.
    for _ in range(MAX_FAILURES):
        await admin_auth.login("203.0.113.7", "more")
    assert await admin_auth.locked_for("203.0.113.7") > 0
    assert not (await admin_auth.login("203.0.113.7", ADMIN_PASSWORD)).ok


@pytest.mark.gen_test
async def test_ipv6_addresses_of_one_64_share_a_throttle(admin_auth):
    for i in range(MAX_FAILURES):
        await admin_auth.login(f"2001:db8:1:2::{i + 1:x}", "wrong")
    assert await admin_auth.locked_for("2001:db8:1:2:ffff::9") > 0
    assert await admin_auth.locked_for("2001:db8:1:3::1") == 0
    assert throttle_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert throttle_key("2001:db8:1:2:abcd::1") == "2001:db8:1:2::/64"


@pytest.mark.gen_test(timeout=60)
async def test_failures_from_many_addresses_pause_sign_in_for_everyone(admin_auth, monkeypatch):
    monkeypatch.setattr(module, "GLOBAL_MAX_FAILURES", 12)
    for i in range(12):
        await admin_auth.login(f"198.51.100.{i + 1}", "wrong")
    paused = await admin_auth.login("192.0.2.200", ADMIN_PASSWORD)
    assert not paused.ok and paused.locked_for == module.GLOBAL_PAUSE


@pytest.mark.gen_test(timeout=60)
async def test_argon2_verifications_are_bounded_per_process(admin_auth):
    await admin_auth.prepare()
    seen = count_verifications(admin_auth)
    results = await asyncio.gather(*(admin_auth.login(f"192.0.2.{i + 1}", "wrong") for i in range(40)))
    assert seen["most"] <= module.ARGON2_SLOTS
    # Beyond the slots and the short queue, attempts are turned away at once, not queued.
    assert seen["calls"] < 40
    busy = [r for r in results if r.locked_for == module.BUSY_RETRY]
    assert busy and all(not r.ok for r in results)
