"""Test helper: Debian's Chromium under Playwright; missing Chromium fails under CI and skips elsewhere."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def phone(**options) -> dict:
    """Context options of a follower's phone: WeChat's in-app browser (a User-Agent with MicroMessenger)."""
    from conftest import WECHAT_UA

    return {"user_agent": WECHAT_UA, "viewport": {"width": 420, "height": 820}, "locale": "zh-CN", **options}


def desktop(**options) -> dict:
    """Context options of a PC browser outside WeChat."""
    from conftest import DESKTOP_UA

    return {"user_agent": DESKTOP_UA, "viewport": {"width": 1280, "height": 900}, "locale": "zh-CN", **options}


def require_chromium() -> str:
    if not os.path.exists(CHROMIUM):
        message = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def launch(playwright):
    return playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=ARGS)
