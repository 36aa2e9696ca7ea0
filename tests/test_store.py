"""The store's own contracts, against the real embedded server (or MONGODB_URI)."""

from __future__ import annotations

import asyncio

import pytest

from server.store import Store, make_client


@pytest.mark.gen_test
async def test_deliveries_of_one_turn_share_a_write_and_the_first_reply_wins(services, mongo_uri, db_name):
    store = services.store
    results = await asyncio.gather(store.record_delivery("a", "r1"), store.record_delivery("a", "r2"),
                                   store.record_delivery("b", "r3"))
    assert results == [None, "r1", None]
    other = Store(make_client(mongo_uri), db_name)  # another process's client
    try:
        assert await other.record_delivery("a", "late") == "r1"
        assert await other.record_delivery("c", "r4") is None
    finally:
        await other.client.close()
    assert await store.messages.count_documents({}) == 3


@pytest.mark.gen_test
async def test_delivery_write_failure_reaches_every_caller(services, mongo_uri):
    from server.embedded import free_port

    dead = Store(make_client(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=200), "x")
    try:
        results = await asyncio.gather(dead.record_delivery("a", "r"), dead.record_delivery("b", "r"), return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
    finally:
        await dead.client.close()


@pytest.mark.gen_test
async def test_login_is_one_complete_record(services):
    await services.store.record_login("oX", "snsapi_userinfo", "uX", {"nickname": "n", "headimgurl": "h", "junk": 1},
                                      {"sealed": "s"})
    user = await services.store.get_user("oX")
    assert user["nickname"] == "n" and user["unionid"] == "uX" and user["web_token"] == {"sealed": "s"}
    assert "junk" not in user and user["login_count"] == 1 and user["created_at"] and user["last_login_at"]
