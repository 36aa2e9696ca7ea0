"""Test helper: runs `python -m server` as a real process on a free port, and stops it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from conftest import ROOT, make_env
from server.embedded import free_port


# The commands speak the terminal's language (LC_ALL / LC_MESSAGES / LANG, Chinese when none is set):
# a test's processes do not inherit the machine's, a test that reads English output sets LANG itself.
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")
ENGLISH = {"LANG": "en_US.UTF-8"}


def clean_env(**settings) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WX_") and k != "MONGODB_URI" and k not in LOCALE_VARS}
    env.update({k: str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerProcess:
    """`python -m server` as a real child process; its stderr (the log) is kept in `lines`.

    A reader thread drains the log as it comes, so a chatty server never blocks on a full pipe.
    """

    def __init__(self, env: dict, args: list[str] | tuple[str, ...] = (), port: int | None = None):
        self.port = port or int(env.get("WX_PORT") or free_port())
        self.env = dict(env, WX_PORT=str(self.port))
        self.args = list(args)
        self.popen: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def launch(self) -> "ServerProcess":
        self.popen = subprocess.Popen([sys.executable, "-m", "server", *self.args], cwd=ROOT, env=self.env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, args=(self.popen,), daemon=True)
        self._reader.start()
        return self

    def _read(self, popen: subprocess.Popen) -> None:
        for line in popen.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 30.0) -> "ServerProcess":
        """Returns once /healthz answers; raises with the log's tail if the server exits or hangs."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(f"server exited with {self.popen.returncode}:\n" + "\n".join(self.lines[-20:]))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not answer /healthz in time:\n" + "\n".join(self.lines[-20:]))
            time.sleep(0.05)

    async def wait_ready_async(self, timeout: float = 30.0) -> "ServerProcess":
        import asyncio

        return await asyncio.to_thread(self.wait_ready, timeout)

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        return self.launch().wait_ready(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stops the server (SIGTERM: the orderly way) and returns its exit code."""
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(5)
        code = self.popen.returncode
        self.popen = None
        return code


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hands a 3xx back to the caller instead of following it."""

    def http_error_302(self, req, fp, code, msg, headers):
        return fp

    http_error_301 = http_error_303 = http_error_307 = http_error_302


def follower_opener() -> urllib.request.OpenerDirector:
    """A urllib client in WeChat, with its own cookie jar, that does not follow redirects (it shows them)."""
    import http.cookiejar

    from conftest import WECHAT_UA

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                         _KeepRedirects())
    opener.addheaders = [("User-Agent", WECHAT_UA)]  # a follower's phone: WeChat's own browser
    return opener


def state_of(response) -> str:
    """The state token in a /wx/go redirect to the authorize page."""
    return response.headers["Location"].split("state=")[1].split("#")[0]


def server_env(app_port: int, wechat_port: int, db: str, mongo_uri: str | None, **extra) -> dict:
    settings = make_env(app_port, wechat_port, db, **extra)
    if mongo_uri:
        settings["MONGODB_URI"] = mongo_uri
    return clean_env(**settings)


class SandboxThread:
    """The WeChat stand-in on its own event loop in a thread, for tests that are not async
    (Playwright's sync API, or plain threads driving real server processes)."""

    def __init__(self, port: int, sandbox=None, server_url: str | None = None, **kwargs):
        from conftest import AES_KEY, APPID, ORIGINAL_ID, SECRET, TOKEN
        from server.sandbox import Sandbox

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.sandbox = sandbox or Sandbox(APPID, SECRET, TOKEN, original_id=ORIGINAL_ID, aes_key=AES_KEY,
                                          server_url=server_url, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server = None

    def start(self) -> "SandboxThread":
        from server.sandbox import start_sandbox

        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._server, _ = self._loop.run_until_complete(start_sandbox(self.sandbox, port=self.port))
            except BaseException as exc:  # reported by start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"sandbox did not start: {failure[0]!r}" if failure else "sandbox did not start")
        return self

    def call(self, fn, *args):
        """Runs fn(*args) on the sandbox's own loop: its state belongs to that thread."""
        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def read(self, fn):
        """A copy of fn(sandbox), taken on the sandbox's thread."""
        return self.call(lambda: copy.deepcopy(fn(self.sandbox)))

    def stop(self) -> None:
        from server.sandbox import stop_sandbox

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(stop_sandbox(self._server), self._loop).result(10)
            self._server = None
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
            self._loop.close()


@contextlib.contextmanager
def sandbox_site(data_dir, **settings):
    """`python -m server --sandbox` on free ports: yields (server, the stand-in's URL); on the way
    out it is stopped and must have exited 0."""
    port, wechat_port = free_port(), free_port()
    server = ServerProcess(clean_env(WX_DATA_DIR=str(data_dir), **settings),
                           ["--sandbox", "--sandbox-port", str(wechat_port)], port=port).start()
    try:
        yield server, f"http://127.0.0.1:{wechat_port}"
    except BaseException:
        server.stop()
        raise
    assert server.stop() == 0


@contextlib.contextmanager
def admin_site(mongo_uri: str, admin_password: str):
    """A real `python -m server` with WX_ADMIN_PASSWORD, beside a stand-in WeChat in a thread,
    on a fresh database: yields (server, stand-in thread) and stops both."""
    from conftest import AES_KEY, APPID, ORIGINAL_ID, SECRET, TOKEN
    from server.sandbox import Sandbox

    app_port, wechat_port = free_port(), free_port()
    db = "t_" + uuid.uuid4().hex[:12]
    sandbox = Sandbox(APPID, SECRET, TOKEN, original_id=ORIGINAL_ID, aes_key=AES_KEY,
                      server_url=f"http://127.0.0.1:{app_port}")
    wechat = SandboxThread(wechat_port, sandbox).start()
    server = ServerProcess(clean_env(**make_env(app_port, wechat_port, db, MONGODB_URI=mongo_uri,
                                                WX_ADMIN_PASSWORD=admin_password)), port=app_port)
    try:
        server.start()
        yield server, wechat
    finally:
        server.stop()
        wechat.stop()
