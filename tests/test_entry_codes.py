"""QR codes for map entries: the link code and the permanent follow code, against the stand-in."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from server.entrycodes import EntryCodes, UnknownEntry
from server.sandbox.base import FOLLOWER_COOKIE

NEWCOMER = "oNewcomer0000000000000000001"


def decode(png: bytes, tmp_path) -> str:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        message = "QR decoding needs Debian's zbar-tools (apt-get install zbar-tools)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "code.png"
    path.write_bytes(png)
    return subprocess.run([zbarimg, "--quiet", "--raw", str(path)], capture_output=True, text=True,
                          timeout=30).stdout.strip()


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
