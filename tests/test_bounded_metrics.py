"""/metrics stays bounded whatever is posted: labels come from fixed sets, routes have unique labels."""

from __future__ import annotations

import random
import re
import string

import pytest
from tornado.httpclient import HTTPClientError

import wxmsg
from server.metrics import route_label


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 12)))


async def _flood(http_client, app_url, rng: random.Random, count: int) -> None:
    for i in range(count):
        if i % 2:
            body = wxmsg.push(_word(rng), MsgId=rng.randrange(10**15))
        else:
            body = wxmsg.event(_word(rng), _word(rng))
        await http_client.fetch(f"{app_url}/wx?{wxmsg.query()}", method="POST", body=body)
        method = rng.choice(["GET", "PROPFIND", "BREW", "MKCOL", _word(rng).upper()])
        try:
            await http_client.fetch(f"{app_url}/{_word(rng)}/{_word(rng)}", method=method, allow_nonstandard_methods=True,
                                    body=None if method == "GET" else b"")
        except HTTPClientError:
            pass


async def _metrics(http_client, app_url) -> str:
    return (await http_client.fetch(f"{app_url}/metrics")).body.decode()


def _series(text: str, name: str) -> set[str]:
    return set(re.findall(rf"^{name}\{{[^}}]*\}}", text, re.M))


@pytest.mark.gen_test(timeout=120)
async def test_random_message_types_events_paths_and_methods_do_not_grow_metrics(http_client, app_url):
    rng = random.Random(7)
    await _flood(http_client, app_url, rng, 50)
    await _metrics(http_client, app_url)  # the scrape's own series exists from here on
    before = await _metrics(http_client, app_url)
    await _flood(http_client, app_url, rng, 600)
    after = await _metrics(http_client, app_url)
    for name in ("wxauth_messages_total", "wxauth_http_requests_total"):
        assert len(_series(after, name)) == len(_series(before, name)), name
    assert len(after) - len(before) < 512  # counts grow in digits, not in lines
    assert 'type="other"' in after and 'type="event:other"' in after and 'method="other"' in after


def test_route_labels_are_unique_per_handler_class():
    from handlers import default_handlers

    classes = {rule[1] for rule in default_handlers()}
    labels = {route_label(cls) for cls in classes}
    assert len(labels) == len(classes)
    assert "page.HomeHandler" in labels and "admin.signin.HomeHandler" in labels
