"""Each entry's funnel: exactly the traffic a test makes, counted per day, shown in the admin and by `stats`."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

import wxmsg
from conftest import ADMIN_PASSWORD, ROOT
from procs import clean_env
from server.funnel import MAX_PENDING, Funnel
from test_authorize import be, consent, seed
from server.sandbox.state import ALICE, BOB, SNAPSHOT  # the stand-in's demo followers

BIND = ("bind", "/wx/page/bind", "绑定学号", ["绑定"], "snsapi_base")
ME = ("me", "/wx/page/me", "我的资料", ["我的"], "snsapi_userinfo")


async def post_wx(http_client, app_url, body: str) -> str:
    response = await http_client.fetch(f"{app_url}/wx?{wxmsg.query()}", method="POST", body=body)
    return response.body.decode()


def today(counts_by_day) -> dict:
    return counts_by_day[-1][1]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("env_overrides", [{"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}])
async def test_the_funnel_counts_exactly_the_traffic_made(http_client, app_url, services, sandbox, browser, admin):
    await seed(services, BIND, ME)
    # Links shown: two keyword replies and a menu click for "bind"; nothing for an unknown text.
    first = wxmsg.text("绑定", msg_id=1)
    for body in (first, wxmsg.text("我要绑定", msg_id=2), wxmsg.event("CLICK", "bind"), wxmsg.text("天气", msg_id=3)):
        assert await post_wx(http_client, app_url, body)
    # WeChat's retry of the first message is the same delivery: not shown twice.
    await post_wx(http_client, app_url, first)
    # Alice taps and lands; the snapshot-page visitor taps and stops; an unknown key counts nowhere.
    be(browser, sandbox, ALICE)
    assert (await browser.get(f"{app_url}/wx/go/bind")).status == 200
    be(browser, sandbox, SNAPSHOT)
    await consent(browser, await browser.get(f"{app_url}/wx/go/me"))
    be(browser, sandbox, BOB)
    await consent(browser, await browser.get(f"{app_url}/wx/go/me"), action="refuse")
    assert (await browser.get(f"{app_url}/wx/go/nothere")).status == 404
    await services.funnel.flush()
    bind = today(await services.funnel.daily("bind"))
    me = today(await services.funnel.daily("me"))
    assert {k: v for k, v in bind.items() if v} == {"shown": 3, "tap": 1, "authorized": 1, "landed": 1}
    assert {k: v for k, v in me.items() if v} == {"tap": 2, "snapshot": 1, "cancelled": 1}
    assert set(await services.funnel.totals()) == {"bind", "me"}

    await admin.login()
    page = (await admin.get("/admin/states/bind")).text_body
    assert '<tr id="funnel-shown"><th scope="row">链接已发出</th><td class="num">3</td>' in page
    assert '<tr id="funnel-landed"><th scope="row">到达页面</th><td class="num">1</td>' in page
    table = (await admin.get("/admin/states")).text_body
    assert '<span class="muted">1 → 1</span>' in table.split('id="spark-bind"', 1)[1]
    assert '<span class="muted">2 → 0</span>' in table.split('id="spark-me"', 1)[1]


@pytest.mark.gen_test
async def test_counting_never_waits_on_or_fails_with_mongodb(services, sandbox):
    await seed(services, BIND)
    funnel = Funnel(services.store, services.state_map)

    async def down(_counts):
        raise ConnectionError("MongoDB is away")

    funnel.store = type("Down", (), {"add_funnel_counts": staticmethod(down)})()
    funnel.count("bind", "tap")
    await funnel.flush()  # no exception: the count waits for the next flush
    assert sum(funnel.pending.values()) == 1
    funnel.store = services.store
    await funnel.flush()
    assert today(await funnel.daily("bind"))["tap"] == 1 and not funnel.pending


def test_the_counters_are_bounded_by_the_map(services):
    funnel = Funnel(services.store, services.state_map)
    services.state_map.entries = {}  # an empty map: nothing is counted, whatever is asked
    for i in range(100):
        funnel.count(f"k{i}", "tap")
    assert not funnel.pending
    funnel.state_map = None
    for i in range(MAX_PENDING + 50):
        funnel.count(f"k{i}", "tap")
    assert len(funnel.pending) == MAX_PENDING and funnel.dropped == 50


@pytest.mark.gen_test
async def test_stats_prints_each_entry_and_one_entry_day_by_day(services, sandbox, tmp_path, db_name, mongo_uri):
    await seed(services, BIND, ME)
    for stage in ("shown", "shown", "tap", "landed"):
        services.funnel.count("bind", stage)
    await services.funnel.flush()
    env = clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, WX_DATA_DIR=str(tmp_path))  # no LANG: Chinese
    every = subprocess.run([sys.executable, "-m", "server", "stats"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert lines[0].split("\t")[:5] == ["条目", "链接已发出", "点开", "授权完成", "到达页面"]
    assert lines[0].split("\t")[-1] == "到达/发出"
    assert "bind\t2\t1\t0\t1\t0\t0\t0\t0\t0\t50%" in lines and "me\t0\t0\t0\t0\t0\t0\t0\t0\t0\t-" in lines
    one = subprocess.run([sys.executable, "-m", "server", "stats", "bind"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    rows = one.stdout.splitlines()
    assert rows[0].startswith("日期\t链接已发出\t")
    assert len(rows) == 31 and rows[-1].startswith(datetime.datetime.now(datetime.timezone.utc).date().isoformat() + "\t2\t1")
    missing = subprocess.run([sys.executable, "-m", "server", "stats", "nothere"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.strip() == "错误：没有条目 'nothere'"
    english = subprocess.run([sys.executable, "-m", "server", "stats"], cwd=ROOT, env=dict(env, LANG="en_US.UTF-8"),
                             capture_output=True, text=True, timeout=60)
    # English headings are the funnel's stage names, as before; the columns keep their order.
    assert english.stdout.splitlines()[0].split("\t") == ["entry", "shown", "tap", "authorized", "landed", "cancelled",
                                                          "cookies", "wechat_error", "snapshot", "other_failure",
                                                          "landed/shown"]
