"""/wx/page/grades, the README's example business page: bind a student number, come back, see the grades."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from server.sandbox.state import ALICE, BOB  # the stand-in's demo followers

GRADES = [
    {"student_no": "2023001", "term": "2025-2026-1", "course": "高等数学", "credit": 5, "score": 92},
    {"student_no": "2023001", "term": "2025-2026-1", "course": "<script>alert(1)</script>", "credit": 1, "score": 60},
    {"student_no": "2023002", "term": "2025-2026-1", "course": "线性代数", "credit": 3, "score": 88},
]


@pytest.fixture
def seeded(io_loop, services):
    async def seed():
        await services.store.db.grades.delete_many({})
        await services.store.db.grades.insert_many([dict(doc) for doc in GRADES])
    io_loop.run_sync(seed)
    return services


def be(browser, openid: str) -> None:
    browser.session.cookie_jar.update_cookies({"wxsandbox_openid": openid})


def xsrf_of(page: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)


async def bind(browser, app_url, student_no: str, next_url: str | None):
    page = await browser.get(f"{app_url}/wx/page/bind" + (f"?next={quote(next_url, safe='')}" if next_url else ""))
    data = {"_xsrf": xsrf_of(page.text_body), "student_no": student_no}
    if next_url is not None:
        data["next"] = next_url
    return await browser.post(f"{app_url}/wx/page/bind", data=data)


@pytest.mark.gen_test
async def test_an_unbound_follower_binds_and_comes_back_to_their_grades(app_url, seeded, sandbox, browser):
    be(browser, ALICE)
    first = await browser.get(f"{app_url}/wx/page/grades")
    # Signed in through authorization, then sent to bind: the page says why and will come back.
    assert first.status == 200 and str(first.url) in (f"{app_url}/wx/page/bind?next=%2Fwx%2Fpage%2Fgrades", f"{app_url}/wx/page/bind?next=/wx/page/grades")
    assert 'id="bind-needed"' in first.text_body
    assert '<input type="hidden" name="next" value="/wx/page/grades">' in first.text_body
    back = await bind(browser, app_url, "2023001", "/wx/page/grades")
    assert back.status == 200 and str(back.url) == f"{app_url}/wx/page/grades"
    assert '<strong id="student-no">2023001</strong>' in back.text_body
    assert "高等数学" in back.text_body and "线性代数" not in back.text_body  # only their own rows
    # A course name is the school's data, but still escaped.
    assert "<script>alert(1)</script>" not in back.text_body and "&lt;script&gt;" in back.text_body
    assert (await seeded.store.get_user(ALICE))["student_no"] == "2023001"


@pytest.mark.gen_test
async def test_a_student_number_without_grades_says_so(app_url, seeded, sandbox, browser):
    be(browser, BOB)
    await browser.get(f"{app_url}/wx/page/grades")
    page = await bind(browser, app_url, "2029999", "/wx/page/grades")
    assert str(page.url) == f"{app_url}/wx/page/grades" and 'id="no-grades"' in page.text_body


@pytest.mark.gen_test
@pytest.mark.parametrize("hostile", ["//evil.example/x", "https://evil.example/wx/page/grades", "/admin/states",
                                     "/wx/page/../../admin/states", "/wx/page/bind", "/wx/page/grades\r\nSet-Cookie: a=b",
                                     "javascript:alert(1)", "/wx/page/\\evil.example"])
async def test_bind_never_returns_to_a_page_outside_wx_page(app_url, seeded, sandbox, browser, hostile):
    be(browser, ALICE)
    await browser.get(f"{app_url}/wx/page/grades")
    shown = await browser.get(f"{app_url}/wx/page/bind?next={quote(hostile, safe='')}")
    assert 'name="next"' not in shown.text_body and 'id="bind-needed"' not in shown.text_body
    saved = await bind(browser, app_url, "2023001", hostile)
    assert saved.status == 200 and str(saved.url) == f"{app_url}/wx/page/bind?saved=1"
