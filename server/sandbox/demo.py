"""The demo account: map entries, the menu, students and their grades, for `--sandbox` and the tests."""

from __future__ import annotations

import copy
import logging

log = logging.getLogger("wxauth.sandbox")

DEMO_BY = "sandbox"  # who the audit log names for what the demo seeds
# The chat page sets this cookie: in sandbox mode the browser showing it counts as WeChat's
# in-app browser (the phone), whatever its User-Agent. A browser without it (a private window)
# is a PC, so both sides of scan-to-sign-in can be tried on one machine. Cookies are per host,
# not per port, so the server (:8000) sees what the stand-in (:8001) set.
PHONE_COOKIE = "wxsandbox_phone"

# The account's own content, in its language (Chinese): key, page, title, keywords, scope
DEMO_STATES = [
    ("me", "/wx/page/me", "我的资料", ["我的", "资料", "me"], "snsapi_userinfo"),
    ("bind", "/wx/page/bind", "绑定学号", ["绑定", "bind"], "snsapi_base"),
    ("score", "/wx/page/grades", "查成绩", ["成绩", "score"], "snsapi_base"),
]
DEMO_MENU = {"button": [
    {"type": "click", "name": "我的", "key": "me"},
    {"type": "click", "name": "成绩", "key": "score"},
    {"name": "更多", "sub_button": [{"type": "click", "name": "绑定学号", "key": "bind"}]},
]}
# The students a demo follower can bind to (the bind page names them in sandbox mode).
DEMO_TERM = "2025-2026-1"
DEMO_GRADES = {
    "2023001": [("高等数学", 5, 92), ("大学英语", 3, 85),
                ("程序设计", 4, 96)],
    "2023002": [("高等数学", 5, 78), ("大学英语", 3, 91),
                ("线性代数", 3, 88)],
}


def demo_grade_docs() -> list[dict]:
    return [{"student_no": student_no, "term": DEMO_TERM, "course": course, "credit": credit, "score": score}
            for student_no, rows in DEMO_GRADES.items() for course, credit, score in rows]


async def seed_demo(services) -> None:
    """Seeds an empty demo account and publishes its menu, the way an admin would.

    Map entries and grades go only into empty collections, never over an admin's edits. The
    menu is the saved one (the demo's when none is saved), published through MenuService to the
    stand-in: the chat page, /admin/menu and `menu show` then all show the same menu.
    """
    store = services.store
    if not await services.state_entries.rows():
        for key, page, title, keywords, scope in DEMO_STATES:
            await services.state_entries.put({"key": key, "page": page, "title": title, "keywords": keywords,
                                              "scope": scope}, by=DEMO_BY)
    grades = store.db.grades
    await grades.create_index("student_no")
    if await grades.count_documents({}, limit=1) == 0:
        await grades.insert_many(demo_grade_docs())
    menu = await services.menus.saved()
    if not menu:
        menu = await services.menus.save(copy.deepcopy(DEMO_MENU), by=DEMO_BY)
    await services.menus.publish(menu, by=DEMO_BY)
