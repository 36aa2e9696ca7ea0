"""Injected faults against real processes: MongoDB stopping and coming back, a worker SIGKILLed under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import wxmsg
from conftest import ROOT
from procs import SandboxThread, ServerProcess, clean_env, follower_opener, server_env, state_of
from server.embedded import EmbeddedMongo, free_port


def set_state(uri: str, db_name: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "server", "states", "set", *args], cwd=ROOT,
                   env=clean_env(MONGODB_URI=uri, WX_DB_NAME=db_name), check=True, capture_output=True, timeout=60)


def post_wx(url: str, body: str, timeout: float = 10) -> tuple[bytes, float]:
    started = time.monotonic()
    request = urllib.request.Request(f"{url}/wx?{wxmsg.query()}", data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read(), time.monotonic() - started


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_mongodb_down_then_back(tmp_path, db_name):
    mongo = EmbeddedMongo(str(tmp_path / "mongo"))
    uri = mongo.start()
    server = ServerProcess(server_env(free_port(), free_port(), db_name, uri)).start()
    try:
        set_state(uri, db_name, "score", "/wx/page/bind", "--keywords", "成绩")
        wait_for(lambda: b"/wx/go/score" in post_wx(server.url, wxmsg.text("成绩", msg_id=int(time.time() * 1e6)))[0], 10, "entry in replies")

        mongo.stop()
        assert status(server.url + "/readyz") == 503
        timings = []
        for i in range(10):
            reply, seconds = post_wx(server.url, wxmsg.text("成绩", msg_id=7000 + i))
            assert b"/wx/go/score" in reply  # the cached state map still answers
            timings.append(seconds)
        assert max(timings) < 1.0, timings
        # A retry reaching the same process is still answered once (the process's own memory).
        body = wxmsg.text("成绩", msg_id=7100, create_time=1700000500)
        assert post_wx(server.url, body)[0] == post_wx(server.url, body)[0]
        assert status(server.url + "/healthz") == 200

        mongo = EmbeddedMongo(str(tmp_path / "mongo"), port=mongo.port)
        mongo.start()
        recovered = wait_for(lambda: status(server.url + "/readyz") == 200, 30, "/readyz turning green")
        # Dedup claims reach MongoDB again once the back-off has passed.
        def stored() -> bool:
            post_wx(server.url, wxmsg.text("成绩", msg_id=int(time.time() * 1e6)))
            from pymongo import MongoClient

            client = MongoClient(uri, serverSelectionTimeoutMS=2000)
            try:
                return client[db_name].messages.count_documents({}) > 0
            finally:
                client.close()

        wait_for(stored, 20, "deliveries stored in MongoDB again")
        assert "Traceback" not in server.log
        print(f"readyz green {recovered:.1f} s after MongoDB came back; replies while down: max {max(timings) * 1000:.0f} ms")
    finally:
        server.stop()
        mongo.stop()


def _follower_login(app_url: str, sandbox: SandboxThread, openid: str) -> int:
    """One follower's sign-in: the callback's HTTP status, or -1 if the connection broke."""
    opener = follower_opener()
    try:
        state = state_of(opener.open(f"{app_url}/wx/go/s", timeout=10))
        code = sandbox.call(sandbox.sandbox.mint_code, openid, "snsapi_base")
        return opener.open(f"{app_url}/wx/page/wxauthor?code={code}&state={state}", timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return -1  # the worker died under us: the request is lost, not half-done


def _workers(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    children.append(int(entry))
            except OSError:
                pass
    return children


def test_worker_killed_under_load_leaves_no_partial_users(tmp_path, mongo_uri, db_name):
    wechat_port = free_port()
    set_state(mongo_uri, db_name, "s", "/wx/page/bind")
    server = ServerProcess(server_env(free_port(), wechat_port, db_name, mongo_uri), ["--processes", "2"]).start()
    sandbox = SandboxThread(wechat_port, latency=0.05).start()
    followers = [f"oKill{i:023d}" for i in range(60)]
    for openid in followers:
        sandbox.call(sandbox.sandbox.add_follower, openid, f"user {openid[-3:]}")
    try:
        wait_for(lambda: len(_workers(server.popen.pid)) == 2, 10, "two workers")
        victim = _workers(server.popen.pid)[0]
        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(_follower_login, server.url, sandbox, openid) for openid in followers]
            # Kill once sign-ins are under way (some callbacks answered), not before.
            wait_for(lambda: server.log.count("path=/wx/page/wxauthor") >= 5, 20, "sign-ins under way")
            os.kill(victim, signal.SIGKILL)
            results = [f.result() for f in futures]
        assert results.count(302) + results.count(200) > 0
        # The supervisor replaced the worker; the service answers as before.
        wait_for(lambda: len(_workers(server.popen.pid)) == 2 and victim not in _workers(server.popen.pid), 10, "worker replaced")
        assert _follower_login(server.url, sandbox, followers[0]) in (200, 302)
    finally:
        server.stop()
        sandbox.stop()
    from pymongo import MongoClient

    client = MongoClient(mongo_uri)
    try:
        users = list(client[db_name].users.find({}))
    finally:
        client.close()
    assert users, "no login completed at all"
    for user in users:
        assert {"openid", "scope", "login_count", "created_at", "last_login_at", "web_token"} <= set(user), user
