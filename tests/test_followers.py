"""Follower sync against the stand-in's /cgi-bin/user/get and batchget: complete, resumable, one at a time."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys

import pytest

from conftest import ADMIN_PASSWORD, ROOT, make_env
from procs import SandboxThread, clean_env
from server.embedded import free_port
from server.followers import JOB, SyncBusy
from server.sandbox.population import crowd_openid
from server.wechat.client import WeChatError
from server.sandbox.state import ALICE  # the stand-in's demo followers

GONE = "oLeftLongAgo0000000000000000"


@pytest.fixture
def crowd(sandbox):
    """2,503 followers: the stand-in's three subscribed ones and 2,500 more, in pages of 1,000."""
    sandbox.population.size = 2500
    sandbox.population.page_size = 1000
    return sandbox


@pytest.fixture
def sandbox_thread_factory():
    started: list[SandboxThread] = []

    def make(**kwargs) -> SandboxThread:
        thread = SandboxThread(free_port(), **kwargs).start()
        started.append(thread)
        return thread

    yield make
    for thread in started:
        thread.stop()


async def count(services, query) -> int:
    return await services.store.users.count_documents(query)


@pytest.mark.gen_test(timeout=60)
async def test_a_sync_stores_every_follower_and_marks_the_others_unsubscribed(services, crowd):
    store = services.store
    # Someone who signed in and gave a profile, and someone who once followed and is gone now.
    await store.record_login(ALICE, "snsapi_userinfo", None, {"nickname": "Alice 小明", "headimgurl": "h"})
    await store.set_subscribed(GONE, True)
    result = await services.followers.run()
    assert result["status"] == "done" and result["seen"] == result["total"] == 2503
    assert await count(services, {"subscribed": True}) == 2503
    assert (await store.get_user(GONE))["subscribed"] in (False, 0) and result["unsubscribed"] == 1
    alice = await store.get_user(ALICE)
    assert alice["nickname"] == "Alice 小明"  # the sync adds to a record, never empties its profile
    assert alice["unionid"] == "uSandboxAlice000000000000000" and alice["subscribe_scene"] == "ADD_SCENE_QR_CODE"
    one = await store.get_user(crowd_openid(7))
    assert (one["subscribe_time"], one["unionid"], one["tags"]) == (1_700_000_007, f"uCrowd{7:022d}", [101])
    # 3 pages and the empty page that ends the list; 100 followers per details call.
    assert crowd.calls["/cgi-bin/user/get"] == 4
    assert crowd.calls["/cgi-bin/user/info/batchget"] == 26


@pytest.mark.gen_test(timeout=60)
async def test_only_a_subscribe_older_than_the_sync_is_overruled_by_the_list(services, crowd):
    store = services.store
    await store.set_subscribed(GONE, True)  # before the sync: the list (without them) is newer
    result = await services.followers.run()
    assert result["unsubscribed"] == 1 and (await store.get_user(GONE))["subscribed"] in (False, 0)
    # A subscribe event that arrives while a sync runs is newer than the list it reads.
    await store.set_subscribed(GONE, True)
    job = await store.get_job(JOB)
    assert await store.mark_unsubscribed_since(job["run"], job["started_at"]) == 0
    assert (await store.get_user(GONE))["subscribed"] in (True, 1)


@pytest.mark.gen_test(timeout=60)
async def test_a_stopped_sync_resumes_at_its_last_page_without_duplicates(services, crowd):
    task = asyncio.get_running_loop().create_task(services.followers.run())
    # Stop it once its first page is written.
    while ((await services.store.get_job(JOB)) or {}).get("seen", 0) < 1000:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = await services.store.get_job(JOB)
    assert job["status"] == "stopped" and job["cursor"] and job["seen"] in (1000, 2000)
    calls = crowd.calls["/cgi-bin/user/get"]
    result = await services.followers.run()
    assert result["status"] == "done" and result["seen"] == 2503 and (await services.store.get_job(JOB))["run"] == job["run"]
    assert await count(services, {}) == 2503  # nobody twice
    # It went on from the saved cursor: the pages after it and the end, not the list again.
    assert crowd.calls["/cgi-bin/user/get"] - calls == (3 - job["seen"] // 1000) + 1


@pytest.mark.gen_test(timeout=60)
async def test_quota_45009_is_waited_out_and_a_lasting_one_stops_with_the_cursor_kept(services, crowd):
    services.followers.backoff = (0.01, 0.01)
    crowd.fail("/cgi-bin/user/info/batchget", errcode=45009, count=2)
    assert (await services.followers.run())["seen"] == 2503  # two refusals, two retries
    await services.store.jobs.delete_many({})
    crowd.fail("/cgi-bin/user/get", errcode=45009, count=3)
    with pytest.raises(WeChatError) as caught:
        await services.followers.run()
    assert caught.value.errcode == 45009
    job = await services.store.get_job(JOB)
    assert job["status"] == "stopped" and "45009" in job["error"] and job["lease_until"] == 0
    assert (await services.followers.run())["seen"] == 2503  # the quota is back: it resumes


@pytest.mark.gen_test(timeout=60)
async def test_one_sync_at_a_time_across_processes(services, crowd, config, mongo_uri):
    from server.runtime import close_services, open_services

    other = await open_services(config, mongo_uri, start_background=False)
    try:
        crowd.latency = 0.05
        first = asyncio.get_running_loop().create_task(services.followers.run())
        while ((await services.store.get_job(JOB)) or {}).get("status") != "running":
            await asyncio.sleep(0.01)
        with pytest.raises(SyncBusy):
            await other.followers.run()
        assert (await first)["seen"] == 2503
    finally:
        await close_services(other)


def test_the_command_shows_progress_and_survives_sigkill(tmp_path, db_name, mongo_uri, sandbox_thread_factory):
    """python -m server followers sync: a line per page, killed mid-way, run again: exact totals."""
    standin = sandbox_thread_factory(population=25_000, latency=0.002)
    env = clean_env(**make_env(free_port(), standin.port, db_name), MONGODB_URI=mongo_uri, WX_DATA_DIR=str(tmp_path),
                    LANG="en_US.UTF-8")  # English output
    cmd = [sys.executable, "-m", "server", "followers", "sync"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = proc.stderr.readline()  # the first page is written
    assert "/ 25,003 followers" in first_line, first_line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # The killed process still holds the lease; it would run out within LEASE_SECONDS.
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        jobs = client[db_name].jobs
        job = jobs.find_one({"_id": JOB})
        assert job["status"] == "running" and job["seen"] >= 10_000
        jobs.update_one({"_id": JOB}, {"$set": {"lease_until": 0}})
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "synced 25,003 followers" in again.stdout
    assert "25,003 / 25,003 followers" in again.stderr
    with MongoClient(mongo_uri) as client:
        assert client[db_name].users.count_documents({}) == 25_003
        assert client[db_name].users.count_documents({"subscribed": True}) == 25_003


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("env_overrides", [{"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}])
async def test_the_admin_button_starts_a_sync_and_the_page_shows_its_progress(admin, services, crowd):
    await admin.login()
    page = await admin.get("/admin/users")
    assert 'id="sync-start"' in page.text_body and "还没有同步过" in page.text_body  # no Accept-Language: Chinese
    started = await admin.post("/admin/users/sync", {})
    assert started.status == 303 and started.headers["Location"] == "/admin/users?sync=1#sync"
    while (progress := json.loads((await admin.get("/admin/users/sync")).text_body))["status"] != "done":
        assert progress["status"] in ("never", "running")
        await asyncio.sleep(0.05)
    assert progress["seen"] == progress["total"] == 2503
    # The counts come with the progress (the page's numbers follow the sync without a reload).
    assert progress["counts"]["total"] == progress["counts"]["subscribed"] == 2503
    page = await admin.get("/admin/users")
    assert re.search(r"<b [^>]*>2503</b> 关注中", page.text_body) and "已完成:" in page.text_body
