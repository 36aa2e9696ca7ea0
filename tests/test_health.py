"""/healthz, /readyz and /metrics, in one process and aggregated across worker processes."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from tornado.httpclient import HTTPClientError

import wxmsg
from procs import ServerProcess, server_env
from server.embedded import free_port


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.gen_test
async def test_healthz_and_readyz(http_client, app_url):
    assert (await http_client.fetch(app_url + "/healthz")).body == b"ok\n"
    ready = await http_client.fetch(app_url + "/readyz")
    assert ready.code == 200 and ready.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_readyz_is_503_when_mongodb_does_not_answer(http_client, app_url, services):
    from server.store import Store, make_client

    dead = make_client(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=300)
    real, services.store = services.store, Store(dead, "x")
    try:
        started = time.monotonic()
        with pytest.raises(HTTPClientError) as info:
            await http_client.fetch(app_url + "/readyz")
        assert info.value.code == 503 and time.monotonic() - started < 2.5
        assert (await http_client.fetch(app_url + "/healthz")).code == 200
    finally:
        services.store = real
        await dead.close()


@pytest.mark.gen_test
async def test_metrics_count_messages_retries_and_requests(http_client, app_url, services):
    before = (await http_client.fetch(app_url + "/metrics")).body.decode()
    body = wxmsg.text("hello", msg_id=424242, create_time=1700000100)
    for _ in range(2):
        await http_client.fetch(f"{app_url}/wx?{wxmsg.query()}", method="POST", body=body)
    after = (await http_client.fetch(app_url + "/metrics")).body.decode()
    assert metric(after, "wxauth_messages_total", type="text") == metric(before, "wxauth_messages_total", type="text") + 2
    assert metric(after, "wxauth_dedup_hits_total") == metric(before, "wxauth_dedup_hits_total") + 1
    assert metric(after, "wxauth_http_requests_total", route="message.WxHandler", method="POST", status="200") >= 2
    assert "wxauth_http_request_seconds_bucket" in after


@pytest.mark.gen_test
async def test_metrics_count_authorizations_and_wechat_calls(http_client, app_url, services, sandbox, browser):
    await services.store.set_state("s", {"page": "/wx/page/bind", "title": "s", "keywords": [], "scope": "snsapi_base"}, by="t")
    await services.state_map.refresh()
    before = (await http_client.fetch(app_url + "/metrics")).body.decode()
    await browser.get(f"{app_url}/wx/go/s")
    sandbox.fail("/sns/oauth2/access_token", errcode=40029)
    await browser.get(f"{app_url}/wx/go/s")
    after = (await http_client.fetch(app_url + "/metrics")).body.decode()
    for result in ("ok", "errcode_40029"):
        assert metric(after, "wxauth_authorizations_total", result=result) == metric(before, "wxauth_authorizations_total", result=result) + 1
    calls = lambda text, outcome: metric(text, "wxauth_wechat_calls_total", endpoint="/sns/oauth2/access_token", outcome=outcome)  # noqa: E731
    assert calls(after, "ok") == calls(before, "ok") + 1
    assert calls(after, "errcode:40029") == calls(before, "errcode:40029") + 1
    assert "code=" not in after and "access_token=" not in after


def test_metrics_add_up_across_worker_processes(mongo_uri, db_name):
    from concurrent.futures import ThreadPoolExecutor

    server = ServerProcess(server_env(free_port(), free_port(), db_name, mongo_uri), ["--processes", "2"]).start()

    def send(i: int) -> None:
        request = urllib.request.Request(f"{server.url}/wx?{wxmsg.query()}", data=wxmsg.text("hi", msg_id=5000 + i).encode())
        urllib.request.urlopen(request, timeout=10).read()

    def workers() -> set:
        return set(re.findall(r"\[(\d+)\] status=200 method=POST path=/wx", server.log))

    try:
        sent = 0
        # Which worker accepts a connection is the kernel's choice: send waves until both have
        # served some, so the sum below really comes from two processes.
        with ThreadPoolExecutor(16) as pool:
            while len(workers()) < 2 and sent < 1600:
                list(pool.map(send, range(sent, sent + 32)))
                sent += 32
        assert len(workers()) == 2, f"one worker took all {sent} requests"
        # A request is counted when its access-log line is written, which can come a moment
        # after the client has its answer: wait for every line before reading the sum.
        deadline = time.monotonic() + 10
        while len(re.findall(r"status=200 method=POST path=/wx", server.log)) < sent:
            assert time.monotonic() < deadline, "access-log lines missing"
            time.sleep(0.02)
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        assert metric(text, "wxauth_messages_total", type="text") == sent
        assert metric(text, "wxauth_http_requests_total", route="message.WxHandler", method="POST", status="200") == sent
    finally:
        assert server.stop() == 0
