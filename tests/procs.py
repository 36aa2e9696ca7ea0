"""Test helper: runs `python -m server` as a real process on a free port, and stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from conftest import ROOT, make_env
from server.embedded import free_port


def clean_env(**settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WX_") and k != "MONGODB_URI"}
    env.update({k: str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerProcess:
    def __init__(self, env: dict, args: list[str] = (), port: int | None = None, log_path: str | None = None):
        self.port = port or int(env.get("WX_PORT") or free_port())
        self.env = dict(env, WX_PORT=str(self.port))
        self.args = list(args)
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.popen = subprocess.Popen([sys.executable, "-m", "server", *self.args], cwd=ROOT, env=self.env,
                                      stdout=out, stderr=out if self.log_path else subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                err = self.popen.stderr.read().decode() if self.popen.stderr else open(self.log_path).read()
                raise RuntimeError(f"server exited with {self.popen.returncode}: {err[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not answer /healthz in time")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        code = self.popen.returncode
        self.popen = None
        return code


def server_env(app_port: int, wechat_port: int, db: str, mongo_uri: str | None, **extra) -> dict:
    settings = make_env(app_port, wechat_port, db, **extra)
    if mongo_uri:
        settings["MONGODB_URI"] = mongo_uri
    return clean_env(**settings)


class SandboxThread:
    """The WeChat stand-in on its own event loop in a thread, for tests that are not async."""

    def __init__(self, port: int, server_url: str | None = None, **kwargs):
        from conftest import AES_KEY, APPID, ORIGINAL_ID, SECRET, TOKEN
        from server.sandbox import Sandbox

        self.port = port
        self.sandbox = Sandbox(APPID, SECRET, TOKEN, original_id=ORIGINAL_ID, aes_key=AES_KEY,
                               server_url=server_url, **kwargs)
        self._loop = None
        self._thread = None

    def start(self) -> "SandboxThread":
        import asyncio
        import threading

        from server.sandbox import start_sandbox

        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server, _ = self._loop.run_until_complete(start_sandbox(self.sandbox, port=self.port))
            ready.set()
            self._loop.run_forever()
            self._server.stop()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "sandbox did not start"
        return self

    def call(self, fn, *args):
        """Runs fn(*args) on the sandbox's loop (its state is not shared across threads otherwise)."""
        import concurrent.futures

        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # handed to the caller
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
