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
