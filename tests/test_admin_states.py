"""/admin/states and /admin/replies: add, edit, delete, validation beside the field, audit, replies follow."""

from __future__ import annotations

import html
import re

import pytest

import wxmsg
from conftest import ADMIN_PASSWORD
from server.wechat.messages import parse_xml

ME = {"key": "me", "page": "/wx/page/me", "title": "我的资料", "keywords": "我的, me", "scope": "snsapi_userinfo"}


@pytest.fixture
def env_overrides():
    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD, "WX_ALLOWED_HOSTS": "partner.example.com"}


@pytest.fixture
def signed_in(io_loop, admin):
    io_loop.run_sync(admin.login)
    return admin


def field_error(body: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>(.*?)</p>', body, re.S)
    return html.unescape(match.group(1)) if match else None


def input_value(body: str, field: str) -> str | None:
    match = re.search(rf'id="{field}" name="{field}"[^>]*value="([^"]*)"', body)
    return html.unescape(match.group(1)) if match else None


async def reply_to(http_client, app_url, text: str, msg_id: int) -> str:
    response = await http_client.fetch(f"{app_url}/wx?{wxmsg.query()}", method="POST", body=wxmsg.text(text, msg_id=msg_id).encode())
    return parse_xml(response.body)["Content"]


# ---- add ---------------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_added_entry_is_listed_stored_and_audited(signed_in, services):
    response = await signed_in.post("/admin/states", ME)
    assert response.status == 303 and response.headers["Location"] == "/admin/states?saved=me"
    doc = await services.store.get_state("me")
    assert doc["page"] == "/wx/page/me" and doc["keywords"] == ["我的", "me"] and doc["scope"] == "snsapi_userinfo"
    assert doc["updated_by"] == "admin@127.0.0.1"
    page = (await signed_in.get("/admin/states?saved=me")).text_body
    row = re.search(r'<tr id="state-me">(.*?)</tr>', page, re.S).group(1)
    for text in ("/wx/page/me", "我的资料", "我的、me", "snsapi_userinfo", "admin@127.0.0.1"):
        assert text in row
    assert '已保存 “me”' in page  # no Accept-Language: Chinese
    audit = (await services.store.recent_audit(1))[0]
    assert audit["action"] == "state.set" and audit["target"] == "me" and audit["who"] == "admin@127.0.0.1"
    assert audit["before"] is None and audit["after"]["page"] == "/wx/page/me"


@pytest.mark.gen_test
async def test_entry_on_an_allowed_host_is_accepted(signed_in, services):
    response = await signed_in.post("/admin/states", {**ME, "page": "https://partner.example.com/grades"})
    assert response.status == 303
    assert (await services.store.get_state("me"))["page"] == "https://partner.example.com/grades"


BAD_ENTRIES = [
    ("bad key charset", {"key": "my-page"}, "key", "字母或数字"),
    ("key with space", {"key": "my page"}, "key", "字母或数字"),
    ("key too long", {"key": "k" * 65}, "key", "1-64"),
    ("empty key", {"key": ""}, "key", "字母或数字"),
    ("scheme-relative page", {"page": "//evil.example"}, "page", "'//'"),
    ("encoded scheme-relative page", {"page": "/%2F%2Fevil.example"}, "page", "'//'"),
    ("backslash page", {"page": "/\\evil.example"}, "page", "反斜杠"),
    ("foreign host", {"page": "https://evil.example/"}, "page", "主机 'evil.example' 不是本站"),
    ("javascript page", {"page": "javascript:alert(1)"}, "page", "以 '/' 开头的路径"),
    ("user info in page", {"page": "https://partner.example.com@evil.example/"}, "page", "'@'"),
    ("empty page", {"page": ""}, "page", "页面不能为空"),
    ("long title", {"title": "t" * 65}, "title", "64"),
    ("bad scope", {"scope": "snsapi_login"}, "scope", "snsapi_base"),
]


@pytest.mark.gen_test
@pytest.mark.parametrize("name,change,field,message", BAD_ENTRIES, ids=[b[0] for b in BAD_ENTRIES])
async def test_invalid_entry_is_refused_with_the_reason_beside_the_field(signed_in, services, name, change, field, message):
    form = {**ME, **change}
    response = await signed_in.post("/admin/states", form)
    assert response.status == 400
    body = response.text_body
    assert message in (field_error(body, field) or ""), body[-3000:]
    # The form keeps what the admin typed (nothing to type again).
    for kept in ("key", "page", "title", "keywords"):
        assert input_value(body, kept) == form[kept].strip()
    assert 'aria-describedby="' + field + "-help " + field + '-error"' in body
    assert await services.store.states.count_documents({}) == 0
    assert await services.store.audit.count_documents({}) == 0


@pytest.mark.gen_test
async def test_keyword_taken_by_another_entry_is_refused(signed_in, services):
    await signed_in.post("/admin/states", {"key": "score", "page": "/wx/page/bind", "title": "成绩", "keywords": "成绩, Score"})
    response = await signed_in.post("/admin/states", {**ME, "keywords": "我的, score"})
    assert response.status == 400
    assert "关键词已被其他条目使用：“score” (score)" in field_error(response.text_body, "keywords")
    assert await services.store.get_state("me") is None


@pytest.mark.gen_test
async def test_adding_an_existing_key_does_not_overwrite_it(signed_in, services):
    await signed_in.post("/admin/states", ME)
    response = await signed_in.post("/admin/states", {**ME, "page": "/wx/page/bind", "keywords": ""})
    assert response.status == 400
    assert "“me” 已存在" in field_error(response.text_body, "key")
    # In English when the admin picked it: the service's reason is translated where it is shown.
    assert (await signed_in.get("/admin/states?lang=en_US")).status == 200
    response = await signed_in.post("/admin/states", {**ME, "page": "/wx/page/bind", "keywords": ""})
    assert response.status == 400
    assert field_error(response.text_body, "key") == "Please fix: “me” already exists: edit it in the table instead"
    assert "Add an entry" in response.text_body and "添加条目" not in response.text_body
    assert (await services.store.get_state("me"))["page"] == "/wx/page/me"


# ---- edit and delete ------------------------------------------------------------------------------------

async def edit_form(admin, key: str) -> dict:
    body = (await admin.get(f"/admin/states/{key}")).text_body
    version = re.search(r'name="version" value="([^"]*)"', body).group(1)
    return {"page": input_value(body, "page"), "title": input_value(body, "title"),
            "keywords": input_value(body, "keywords"), "scope": "snsapi_userinfo", "version": html.unescape(version)}


@pytest.mark.gen_test
async def test_edit_changes_the_entry_and_audits_before_and_after(signed_in, services):
    await signed_in.post("/admin/states", ME)
    form = await edit_form(signed_in, "me")
    assert form["page"] == "/wx/page/me" and form["keywords"] == "我的, me"
    response = await signed_in.post("/admin/states/me", {**form, "title": "个人资料", "keywords": "资料"})
    assert response.status == 303
    doc = await services.store.get_state("me")
    assert doc["title"] == "个人资料" and doc["keywords"] == ["资料"]
    audit = (await services.store.recent_audit(1))[0]
    assert audit["action"] == "state.set" and audit["before"]["title"] == "我的资料" and audit["after"]["title"] == "个人资料"
    page = (await signed_in.get("/admin/audit")).text_body
    assert "state.set" in page and "个人资料" in page and "我的资料" in page


@pytest.mark.gen_test
async def test_edit_with_a_bad_page_keeps_the_edit_and_changes_nothing(signed_in, services):
    await signed_in.post("/admin/states", ME)
    form = await edit_form(signed_in, "me")
    response = await signed_in.post("/admin/states/me", {**form, "title": "New title", "page": "//evil.example"})
    assert response.status == 400
    assert "'//'" in field_error(response.text_body, "page")
    assert input_value(response.text_body, "title") == "New title"
    assert (await services.store.get_state("me"))["title"] == "我的资料"


@pytest.mark.gen_test
async def test_edit_over_someone_elses_change_is_not_silent(signed_in, services):
    await signed_in.post("/admin/states", ME)
    form = await edit_form(signed_in, "me")
    await services.store.set_state("me", {"page": "/wx/page/bind", "title": "Theirs", "keywords": ["x"], "scope": "snsapi_base"}, by="cli")
    response = await signed_in.post("/admin/states/me", {**form, "title": "Mine"})
    assert response.status == 409
    body = response.text_body
    assert "被他人修改" in body and "Theirs" in body and input_value(body, "title") == "Mine"
    assert (await services.store.get_state("me"))["title"] == "Theirs"
    # Saving again (the form now carries their version) replaces theirs deliberately.
    version = html.unescape(re.search(r'name="version" value="([^"]*)"', body).group(1))
    response = await signed_in.post("/admin/states/me", {**form, "title": "Mine", "version": version})
    assert response.status == 303
    assert (await services.store.get_state("me"))["title"] == "Mine"


@pytest.mark.gen_test
async def test_delete_removes_the_entry_and_audits_it(signed_in, services):
    await signed_in.post("/admin/states", ME)
    response = await signed_in.post("/admin/states/me/delete")
    assert response.status == 303 and response.headers["Location"] == "/admin/states?deleted=me"
    assert await services.store.get_state("me") is None
    audit = (await services.store.recent_audit(1))[0]
    assert audit["action"] == "state.delete" and audit["before"]["page"] == "/wx/page/me" and audit["after"] is None
    missing = await signed_in.get("/admin/states/me")
    assert missing.status == 404 and "没有条目 “me”。" in missing.text_body  # the page says which, in Chinese
    again = await signed_in.post("/admin/states/me/delete")  # a second click changes nothing
    assert again.headers["Location"] == "/admin/states" and await services.store.audit.count_documents({}) == 2


# ---- replies follow the map --------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_added_entry_answers_messages_at_once(signed_in, http_client, app_url, config):
    assert "没有找到" in await reply_to(http_client, app_url, "我的", 501)
    await signed_in.post("/admin/states", ME)
    assert await reply_to(http_client, app_url, "我的", 502) == f'<a href="{config.app_host}/wx/go/me">我的资料</a>'
    await signed_in.post("/admin/states/me/delete")
    assert "没有找到" in await reply_to(http_client, app_url, "我的", 503)


@pytest.mark.gen_test
async def test_welcome_and_default_reply_are_edited_and_used(signed_in, http_client, app_url, services):
    await signed_in.post("/admin/states", ME)
    response = await signed_in.post("/admin/replies", {"welcome": "欢迎！\r\n{links}", "default_reply": "试试：{keywords}"})
    assert response.status == 303
    assert await services.store.get_setting("welcome") == "欢迎！\n{links}"
    assert await reply_to(http_client, app_url, "hello", 601) == "试试：我的"
    page = (await signed_in.get("/admin/replies")).text_body
    assert "试试：我的" in page  # the preview shows what followers get
    assert (await services.store.recent_audit(1))[0]["action"] == "setting.set"
    # Emptying a box goes back to the default text.
    await signed_in.post("/admin/replies", {"welcome": "欢迎！\n{links}", "default_reply": ""})
    assert "没有找到" in await reply_to(http_client, app_url, "hello", 602)


@pytest.mark.gen_test
async def test_overlong_reply_is_refused_beside_its_box(signed_in, services):
    response = await signed_in.post("/admin/replies", {"welcome": "w" * 601, "default_reply": "ok"})
    assert response.status == 400
    assert "最多 600 个字符（现在 601 个）" in field_error(response.text_body, "welcome")
    assert await services.store.get_setting("default_reply") is None
