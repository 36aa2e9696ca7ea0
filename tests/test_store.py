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
async def test_a_nonce_on_another_claim_is_a_replay_and_writes_nothing(services):
    from server.store import NonceReused

    store = services.store
    results = await asyncio.gather(store.record_delivery("m1", "r1", "1700000000:1", 600),
                                   store.record_delivery("m2", "r2", "1700000000:1", 600),
                                   store.record_delivery("m1", "again", "1700000000:1", 600),
                                   return_exceptions=True)
    assert results[0] is None and isinstance(results[1], NonceReused) and results[2] == "r1"
    assert await store.messages.find_one({"_id": "m2"}) is None
    # A claim keeps its nonce as long as the nonce can come back, not only the 60 s of a retry.
    doc = await store.messages.find_one({"_id": "m1"})
    assert (doc["expires_at"] - doc["at"]).total_seconds() == 600


@pytest.mark.gen_test
async def test_the_old_sixty_second_ttl_index_is_dropped(services):
    store = services.store
    await store.messages.drop_indexes()
    await store.messages.create_index("at", expireAfterSeconds=60)  # what earlier versions created
    await store.ensure_indexes()
    indexes = {tuple(index["key"]): index async for index in await store.messages.list_indexes()}
    assert ("at",) not in indexes
    assert indexes[("expires_at",)]["expireAfterSeconds"] == 0 and indexes[("nonce",)]["unique"] in (True, 1)


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


@pytest.mark.gen_test
async def test_a_website_only_person_becomes_one_record_when_they_sign_in_as_a_follower(services):
    store = services.store
    # First the website (the follower record does not exist yet): a record of their own.
    assert await store.record_web_login("oWebFirst0001", "uOnePerson", {"nickname": "网"}) == "oWebFirst0001"
    # Then the official account, with the same unionid: one document holds both openids.
    await store.record_login("oFollowerLater1", "snsapi_base", "uOnePerson", None)
    records = await store.users.find({"unionid": "uOnePerson"}).to_list()
    assert [(r["openid"], r.get("web_openid"), r.get("source")) for r in records] == \
        [("oFollowerLater1", "oWebFirst0001", None)]
    # And the website finds that record from now on; the account's openid is never replaced.
    assert await store.record_web_login("oWebFirst0001", "uOnePerson", None) == "oFollowerLater1"
    assert await store.users.count_documents({"unionid": "uOnePerson"}) == 1


@pytest.mark.gen_test
async def test_a_website_record_without_unionid_stays_apart(services):
    store = services.store
    await store.record_web_login("oWebLoner0002", None, None)
    await store.record_login("oFollower0002", "snsapi_base", None, None)
    assert (await store.get_user("oWebLoner0002"))["source"] == "website"
    assert "web_openid" not in (await store.get_user("oFollower0002"))
