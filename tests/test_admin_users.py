"""/admin/users: escaping, search, paging without loading everyone, counts and the login chart."""

from __future__ import annotations

import datetime
import json
import re

import pytest

from conftest import ADMIN_PASSWORD
from server.store import utcnow


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
def signed_in(io_loop, admin):
    io_loop.run_sync(admin.login)
    return admin


def rows(body: str) -> list[str]:
    table = re.search(r'<table class="data" id="users">.*?<tbody>(.*?)</tbody>', body, re.S).group(1)
    return [r for r in re.findall(r"<tr>(.*?)</tr>", table, re.S) if 'colspan="7"' not in r]  # not "No users found"


async def add_users(store, count: int, **fields) -> None:
    now = utcnow()
    await store.users.insert_many([
        {"openid": f"oUser{i:08d}", "nickname": f"用户 {i}", "scope": "snsapi_base", "subscribed": i % 2 == 0,
         "login_count": 1, "last_login_at": now - datetime.timedelta(minutes=i), **fields}
        for i in range(count)
    ])


@pytest.mark.gen_test
async def test_script_in_a_nickname_is_shown_as_text(signed_in, services):
    # The sandbox's follower "Mallory" has exactly this nickname (CWE-79, stored XSS).
    await services.store.record_login("oMallory", "snsapi_userinfo", "uMallory", {"nickname": "<script>alert(1)</script>"})
    await services.store.record_login("oQuote", "snsapi_userinfo", None, {"nickname": '"><img src=x onerror=alert(2)>'})
    body = (await signed_in.get("/admin/users")).text_body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in body and "<img src=x" not in body
    searched = (await signed_in.get("/admin/users?q=%3Cscript%3E")).text_body
    assert 'value="&lt;script&gt;"' in searched and len(rows(searched)) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("query,expected", [
    ("oUser00000007", ["oUser00000007"]),
    ("uUnion7", ["oUser00000007"]),
    ("用户 1", ["oUser00000001", "oUser00000010", "oUser00000011"]),
    ("oUser0000000", []),          # an openid must be complete
    (".*", []),                     # the search text is never a pattern
    ("nobody", []),
])
async def test_search_by_openid_unionid_or_nickname(signed_in, services, query, expected):
    await add_users(services.store, 12)
    await services.store.users.update_one({"openid": "oUser00000007"}, {"$set": {"unionid": "uUnion7"}})
    response = await signed_in.get("/admin/users?" + __import__("urllib.parse").parse.urlencode({"q": query}))
    found = re.findall(r"<code>(oUser\d+)</code>", response.text_body)
    assert sorted(found) == sorted(expected)
    assert f"{len(expected)} 个用户" in response.text_body  # no Accept-Language: Chinese


@pytest.mark.gen_test
async def test_paging_reads_one_page_at_a_time(signed_in, services, monkeypatch):
    await add_users(services.store, 120)
    calls = []
    original = services.store.find_users

    async def spy(query="", skip=0, limit=50):
        calls.append((skip, limit))
        return await original(query, skip=skip, limit=limit)

    monkeypatch.setattr(services.store, "find_users", spy)
    first = (await signed_in.get("/admin/users")).text_body
    assert len(rows(first)) == 50 and "第 1 / 3 页" in first and "oUser00000000" in first
    last = (await signed_in.get("/admin/users?page=3")).text_body
    assert len(rows(last)) == 20 and "第 3 / 3 页" in last and "oUser00000119" in last
    assert 'rel="next"' not in last and 'href="/admin/users?page=2" rel="prev"' in last
    beyond = (await signed_in.get("/admin/users?page=999")).text_body
    assert "第 3 / 3 页" in beyond
    nonsense = (await signed_in.get("/admin/users?page=abc")).text_body
    assert "第 1 / 3 页" in nonsense
    assert calls == [(0, 50), (100, 50), (100, 50), (0, 50)]
    searched = (await signed_in.get("/admin/users?q=%E7%94%A8%E6%88%B7%2011&page=2")).text_body
    assert "第 1 / 1 页" in searched and len(rows(searched)) == 11  # 用户 11 and 用户 110-119
    searched = (await signed_in.get("/admin/users?q=%E7%94%A8%E6%88%B7&page=2")).text_body
    assert "第 2 / 3 页" in searched and 'href="/admin/users?q=%E7%94%A8%E6%88%B7&amp;page=3" rel="next"' in searched


@pytest.mark.gen_test
async def test_counts_and_the_daily_login_chart(signed_in, services):
    await add_users(services.store, 6)
    await services.store.users.insert_one({"openid": "oOld", "last_login_at": utcnow() - datetime.timedelta(days=30)})
    for openid in ("oA", "oB", "oC"):
        await services.store.logins.insert_one({"openid": openid, "at": utcnow()})
    await services.store.logins.insert_one({"openid": "oA", "at": utcnow() - datetime.timedelta(days=3)})
    body = (await signed_in.get("/admin/users")).text_body
    counts = re.search(r'<ul class="stats" id="counts">(.*?)</ul>', body, re.S).group(1)
    assert re.findall(r"<b [^>]*>(\d+)</b>", counts) == ["7", "3", "6"]  # total, following, signed in within 7 days
    # The same numbers ride along with the sync's progress, so the page's numbers follow a sync.
    progress = json.loads((await signed_in.get("/admin/users/sync")).text_body)
    assert progress["counts"] == {"total": 7, "subscribed": 3, "active_7d": 6} and progress["status"] == "never"
    svg = re.search(r'<svg [^>]*id="login-chart">(.*?)</svg>', body, re.S).group(1)
    assert svg.count("<rect ") == 30
    today = utcnow().date().isoformat()
    three_days_ago = (utcnow().date() - datetime.timedelta(days=3)).isoformat()
    assert f"<title>{today}: 3</title>" in svg and f"<title>{three_days_ago}: 1</title>" in svg
    assert "共 4 次，最多一天 3 次" in body
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" class="bar"', svg)]
    assert max(heights) == heights[-1] and heights[-4] == pytest.approx(heights[-1] / 3, abs=0.1)


@pytest.mark.gen_test
async def test_followers_who_signed_in_count_as_active(signed_in, services):
    for openid in ("oA", "oB", "oC"):
        await services.store.record_login(openid, "snsapi_base", None, None)
    assert (await services.store.user_counts())["active_7d"] == 3


@pytest.mark.gen_test
async def test_the_users_page_says_which_records_are_website_only(signed_in, services):
    await services.store.record_web_login("oWebLoner0003", None, {"nickname": "网站用户"})
    await services.store.record_login("oFollower0003", "snsapi_base", None, None)
    body = (await signed_in.get("/admin/users")).text_body
    assert 'id="web-only-oWebLoner0003"' in body and "无 unionid" in body and "no unionid" not in body
    assert 'id="web-only-oFollower0003"' not in body
    # English when asked for (remembered in the wx_lang cookie): the same page, every word in it.
    english = (await signed_in.get("/admin/users?lang=en_US")).text_body
    assert 'id="web-only-oWebLoner0003"' in english and "no unionid" in english and "无 unionid" not in english
    assert "signed in within 7 days" in english and "Sync followers" in english and "page 1 of 1" in english
    assert "同步关注者" not in english and "第 1 / 1 页" not in english
    again = (await signed_in.get("/admin/users")).text_body
    assert "Sync followers" in again and "同步关注者" not in again
