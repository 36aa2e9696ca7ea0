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


def decode_qr(png: bytes, tmp_path) -> str:
    """What a phone would read from a QR image, by Debian's zbarimg (fails under CI, skips elsewhere)."""
    import shutil
    import subprocess

    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        message = "QR decoding needs Debian's zbar-tools (apt-get install zbar-tools)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "decode-me.png"
    path.write_bytes(png)
    return subprocess.run([zbarimg, "--quiet", "--raw", str(path)], capture_output=True, text=True,
                          timeout=30).stdout.strip()
