"""QR codes for map entries: the link code and the permanent follow code, against the stand-in."""

from __future__ import annotations

import subprocess

import pytest

from browser import decode_qr

from server.entrycodes import EntryCodes, UnknownEntry
from server.sandbox.base import FOLLOWER_COOKIE

NEWCOMER = "oNewcomer0000000000000000001"


def decode(png: bytes, tmp_path) -> str:
    return decode_qr(png, tmp_path)


@pytest.fixture
def codes(services):
    return EntryCodes(services.config, services.store, services.wechat, services.tokens)


async def seed(services):
    await services.store.set_state("score", {"page": "/wx/page/bind", "title": "查成绩", "keywords": ["成绩"],
                                             "scope": "snsapi_base"}, by="test")
    await services.state_map.refresh()


@pytest.mark.gen_test
async def test_the_link_code_decodes_to_the_entry_link(codes, services, config, tmp_path):
    await seed(services)
    assert decode(codes.link_png("score"), tmp_path) == f"{config.app_host}/wx/go/score"
    assert "<svg" in codes.link_svg("score")


@pytest.mark.gen_test
async def test_the_follow_code_is_created_once_and_reused(codes, services, sandbox, tmp_path):
    await seed(services)
    first = await codes.follow_code("score")
    again = await codes.follow_code("score")
    assert first == again and sandbox.calls["qrcode created"] == 1
    assert (await services.store.get_state("score"))["follow_qr"] == first
    assert decode(await codes.follow_png("score"), tmp_path) == first["url"]
    with pytest.raises(UnknownEntry):
        await codes.follow_code("nothere")


@pytest.mark.gen_test
async def test_scanning_the_follow_code_follows_and_gets_the_entry_link(codes, services, sandbox, http_client, app_url,
                                                                       config):
    await seed(services)
    sandbox.server_url = app_url
    sandbox.add_follower(NEWCOMER, "新人", subscribed=False)
    url = (await codes.follow_code("score"))["url"]
    # The phone opens what the code encodes: the stand-in sends subscribe with qrscene_score.
    response = await http_client.fetch(url, headers={"Cookie": f"{FOLLOWER_COOKIE}={NEWCOMER}"},
                                       follow_redirects=False, raise_error=False)
    assert response.code == 302
    replies = [e for e in sandbox.inbox(NEWCOMER) if e["from"] == "account"]
    assert replies and f"{config.app_host}/wx/go/score" in replies[-1]["content"]
    assert sandbox.followers[NEWCOMER].subscribed
    # Scanning again as a follower is a SCAN event: the link again.
    await http_client.fetch(url, headers={"Cookie": f"{FOLLOWER_COOKIE}={NEWCOMER}"}, follow_redirects=False,
                            raise_error=False)
    events = [e for e in sandbox.inbox(NEWCOMER) if e["from"] == "follower"]
    assert [e["event"] for e in events] == ["subscribe", "SCAN"]
    await services.writes.wait_idle()
    assert (await services.store.get_user(NEWCOMER))["subscribed"] is True


def test_cli_writes_the_link_code_and_the_follow_code_once(mongo_uri, db_name, tmp_path):
    import sys

    from conftest import ROOT
    from procs import SandboxThread, server_env
    from server.embedded import free_port

    wechat_port = free_port()
    env = server_env(free_port(), wechat_port, db_name, mongo_uri, LANG="en_US.UTF-8")  # English output

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    assert cli("states", "set", "score", "/wx/page/bind", "--title", "查成绩").returncode == 0
    link = cli("states", "qr", "score", "--out", str(tmp_path / "link.png"))
    assert link.returncode == 0, link.stderr
    assert decode((tmp_path / "link.png").read_bytes(), tmp_path) == f"{env['WX_APP_HOST']}/wx/go/score"
    missing = cli("states", "qr", "nothere", "--out", str(tmp_path / "x.png"))
    assert missing.returncode == 1 and "no entry" in missing.stderr
    sandbox = SandboxThread(wechat_port).start()
    try:
        for name in ("follow1.png", "follow2.png"):
            follow = cli("states", "qr", "score", "--follow", "--out", str(tmp_path / name))
            assert follow.returncode == 0, follow.stderr
        assert sandbox.sandbox.calls["qrcode created"] == 1  # the second command reused the stored ticket
        first = decode((tmp_path / "follow1.png").read_bytes(), tmp_path)
        assert first.startswith(f"http://127.0.0.1:{wechat_port}/q/")
        assert decode((tmp_path / "follow2.png").read_bytes(), tmp_path) == first
    finally:
        sandbox.stop()


@pytest.fixture
def env_overrides():
    from conftest import ADMIN_PASSWORD

    return {"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.mark.gen_test
async def test_admin_downloads_the_link_code_and_creates_the_follow_code(admin, services, sandbox, config, tmp_path):
    await seed(services)
    await admin.login()
    page = await admin.get("/admin/states")
    assert 'href="/admin/states/score/qr.png"' in page.text_body
    # Each row shows its code too, drawn inline (the page's CSP allows no external image host).
    from server.qrimage import qr_svg

    preview = page.text_body.split('id="qr-preview-score">', 1)[1]
    assert preview.startswith(qr_svg(f"{config.app_host}/wx/go/score"))
    png = await admin.get("/admin/states/score/qr.png")
    assert png.status == 200 and png.headers["Content-Type"] == "image/png"
    assert decode(png.body_bytes, tmp_path) == f"{config.app_host}/wx/go/score"
    assert (await admin.get("/admin/states/score/qr.png?kind=follow")).status == 404  # not created yet
    created = await admin.post("/admin/states/score/follow-qr", {})
    assert created.status == 303
    follow = await admin.get("/admin/states/score/qr.png?kind=follow")
    assert follow.status == 200
    stored_url = (await services.store.get_state("score"))["follow_qr"]["url"]
    assert decode(follow.body_bytes, tmp_path) == stored_url
    # The page names what the code holds (the sandbox's chat can "scan" that URL).
    assert f'<code id="follow-url-score">{stored_url}</code>' in (await admin.get("/admin/states")).text_body
    await admin.post("/admin/states/score/follow-qr", {})
    assert sandbox.calls["qrcode created"] == 1
