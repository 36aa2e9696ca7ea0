"""Follower writes while MongoDB is down: kept in memory, bounded, written in order once it is back."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request

import pytest
from prometheus_client import REGISTRY

import wxmsg
from procs import ServerProcess, server_env
from server.embedded import EmbeddedMongo, free_port
from server.userwrites import UserWrites


def post_wx(url: str, body: str) -> bytes:
    request = urllib.request.Request(f"{url}/wx?{wxmsg.query()}", data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def users(uri: str, db_name: str) -> dict[str, dict]:
    from pymongo import MongoClient

    client = MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        return {doc["openid"]: doc for doc in client[db_name].users.find({})}
    finally:
        client.close()


def test_subscribes_while_mongodb_is_down_are_written_in_order_once_it_is_back(tmp_path, db_name):
    mongo = EmbeddedMongo(str(tmp_path / "mongo"))
    uri = mongo.start()
    server = ServerProcess(server_env(free_port(), free_port(), db_name, uri)).start()
    try:
        assert b"<xml>" in post_wx(server.url, wxmsg.text("hi", msg_id=1))
        mongo.stop()
        # Two followers subscribe; the second one leaves again before MongoDB is back.
        now = int(time.time())
        assert b"<xml>" in post_wx(server.url, wxmsg.event("subscribe", "", openid="oDown00000000000000000001", create_time=now))
        assert b"<xml>" in post_wx(server.url, wxmsg.event("subscribe", "", openid="oDown00000000000000000002", create_time=now))
        post_wx(server.url, wxmsg.event("unsubscribe", "", openid="oDown00000000000000000002", create_time=now + 1))

        mongo = EmbeddedMongo(str(tmp_path / "mongo"), port=mongo.port)
        mongo.start()
        back = time.monotonic()
        while True:
            found = users(uri, db_name)
            if "oDown00000000000000000001" in found and "oDown00000000000000000002" in found:
                break
            assert time.monotonic() - back < 20, "writes kept while MongoDB was down never arrived"
            time.sleep(0.05)
        print(f"follower writes in MongoDB {time.monotonic() - back:.2f} s after it was back")
        assert found["oDown00000000000000000001"]["subscribed"] in (True, 1)
        # In order: the unsubscribe came after the subscribe, and so it stays.
        deadline = time.monotonic() + 10
        while found["oDown00000000000000000002"]["subscribed"] not in (False, 0):
            assert time.monotonic() < deadline, found["oDown00000000000000000002"]
            time.sleep(0.05)
            found = users(uri, db_name)
        assert "Traceback" not in server.log
    finally:
        server.stop()
        mongo.stop()


def _dropped() -> float:
    return REGISTRY.get_sample_value("wxauth_user_writes_dropped_total") or 0.0


@pytest.mark.gen_test
async def test_queue_is_bounded_and_overflow_is_counted_and_logged(caplog):
    caplog.set_level(logging.ERROR, logger="wxauth.store")
    from server.metrics import Metrics

    calls: list[str] = []

    async def down(openid: str) -> None:
        calls.append(openid)
        raise ConnectionError("MongoDB is down")

    writes = UserWrites(Metrics(), limit=3)
    before = _dropped()
    accepted = [writes.submit("subscribe", f"o{i}", down, f"o{i}") for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert writes.pending == 3 and _dropped() - before == 7
    overflow = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(overflow) == 1 and "o3" not in overflow[0].getMessage()  # openids are never logged
    writes.start()
    await asyncio.sleep(0.3)
    # Still down: the head is retried, never skipped, and the queue keeps its order.
    assert set(calls) == {"o0"} and writes.pending == 3
    await writes.stop(flush_timeout=0.1)


@pytest.mark.gen_test
async def test_writes_go_out_in_order_once_the_store_answers():
    answered = asyncio.Event()
    done: list[str] = []

    async def flaky(openid: str) -> None:
        if not answered.is_set():
            raise ConnectionError("down")
        done.append(openid)

    writes = UserWrites()
    writes.start()
    for i in range(5):
        writes.submit("subscribe", f"o{i}", flaky, f"o{i}")
    await asyncio.sleep(0.2)
    assert done == []
    answered.set()
    await asyncio.wait_for(writes.wait_idle(), 5)
    assert done == [f"o{i}" for i in range(5)]
    await writes.stop()


@pytest.mark.gen_test
async def test_a_login_write_retried_after_a_lost_answer_counts_once(services):
    login = ("oRetry000000000000000001", "snsapi_base", None, None, None, "op-1")
    await services.store.record_login(*login)
    await services.store.record_login(*login)  # the same write again, as the queue would retry it
    assert (await services.store.get_user("oRetry000000000000000001"))["login_count"] == 1
    await services.store.record_login(*login[:5], "op-2")  # a new sign-in counts
    assert (await services.store.get_user("oRetry000000000000000001"))["login_count"] == 2
