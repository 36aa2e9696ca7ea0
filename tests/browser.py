"""Test helper: Debian's Chromium under Playwright; missing Chromium fails under CI and skips elsewhere."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def require_chromium() -> str:
    if not os.path.exists(CHROMIUM):
        message = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def launch(playwright):
    return playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=ARGS)
