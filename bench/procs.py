"""The processes a benchmark starts (store, server, stand-in, comparison apps), and their orderly stop."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from server.embedded import EmbeddedMongo, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "test-output", "bench")

# The tests' credentials (never a real account); followers tap links inside WeChat, any other
# browser gets the scan page (docs/wechat-protocol.md §17).
from server.sandbox.testkit import AES_KEY, APPID, COOKIE_SECRET, ORIGINAL_ID, SECRET, TOKEN, WECHAT_UA  # noqa: E402,F401


@dataclasses.dataclass
class StoreHandle:
    """Where the server keeps its data during a run: the embedded server we started, or MONGODB_URI."""

    uri: str
    db: str
    pid: int | None   # None: not our process, its CPU is not measured
    label: str


class StartupError(RuntimeError):
    """A process did not come up; str() names it and quotes the end of its log."""


def server_env(app_port: int, wechat_port: int, mongodb_uri: str, db: str, **extra) -> dict:
    """The environment of `python -m server`, as tests/conftest.make_env builds it."""
    # English output: the benchmarks read the commands' progress lines (LC_ALL / LC_MESSAGES would decide over LANG).
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    env.update({
        "LANG": "en_US.UTF-8",
        "WX_APPID": APPID, "WX_APPSECRET": SECRET, "WX_TOKEN": TOKEN, "WX_AES_KEY": AES_KEY,
        "WX_COOKIE_SECRET": COOKIE_SECRET,
        "WX_APP_HOST": f"http://127.0.0.1:{app_port}", "WX_PORT": str(app_port),
        "WX_API_BASE": f"http://127.0.0.1:{wechat_port}", "WX_OPEN_BASE": f"http://127.0.0.1:{wechat_port}",
        "WX_DB_NAME": db, "MONGODB_URI": mongodb_uri, "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return ""


class Fleet:
    """Everything one benchmark run started; leaving the `with` block stops it all, in reverse order.

    Children get their own session so a Ctrl-C in the terminal reaches only us, and we stop
    them in order (the server before the store it writes to)."""

    def __init__(self, name: str, profile: bool = False):
        self.name = name
        self.workdir = ""
        self.profile_path = os.path.join(OUTPUT, name + "-server.prof") if profile else None
        self._stack: list = []

    def __enter__(self) -> "Fleet":
        # A fresh directory (and store) per run: figures never depend on what an earlier run left
        # behind, and two runs at once (a smoke test beside a real run) do not collide.
        os.makedirs(OUTPUT, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix=f"run-{self.name}-", dir=OUTPUT)
        self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            while self._stack:
                item = self._stack.pop()
                try:
                    _stop(item)
                except Exception as error:  # keep stopping the rest
                    print(f"bench: could not stop {item}: {error}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGTERM, self._old_term)
        if exc_type is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"bench: logs of the processes are in {self.workdir}", file=sys.stderr)

    def checkout(self, revision: str) -> str:
        """A detached git worktree of `revision` (removed with the fleet), to run an older server beside this one."""
        path = os.path.join(self.workdir, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", path, revision], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        self._stack.insert(0, _Worktree(path))  # removed last, after the server running from it
        return path

    def log_path(self, label: str) -> str:
        return os.path.join(self.workdir, label + ".log")

    def store(self) -> StoreHandle:
        """MONGODB_URI when set (a fresh database, dropped afterwards), else a fresh embedded server."""
        uri = os.environ.get("MONGODB_URI")
        if uri:
            handle = StoreHandle(uri, f"bench_{self.name}_{uuid.uuid4().hex[:8]}", None, "MongoDB at MONGODB_URI")
            self._stack.append(handle)
            return handle
        embedded = EmbeddedMongo(os.path.join(self.workdir, "mongo"))
        self._stack.append(embedded)
        embedded.start()
        return StoreHandle(embedded.uri, f"bench_{self.name}", embedded.process.pid, "embedded store (nx-27017)")

    def start(self, label: str, argv: list[str], env: dict | None = None, cwd: str = ROOT) -> subprocess.Popen:
        log = open(self.log_path(label), "wb")
        proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env or dict(os.environ),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        proc.label = label
        self._stack.append(proc)
        return proc

    def server_argv(self, port: int) -> list[str]:
        """`python -m server`, under cProfile with --profile (it writes the profile when SIGTERM stops it)."""
        argv = ["-m", "server", "--port", str(port)]
        return ["-m", "cProfile", "-o", self.profile_path, *argv] if self.profile_path else argv

    def serve(self, label: str, argv: list[str], port: int, env: dict | None = None,
              path: str = "/healthz", timeout: float = 30.0, cwd: str = ROOT) -> subprocess.Popen:
        """Starts an HTTP process and returns it once `path` on `port` answers 200."""
        proc = self.start(label, argv, env, cwd)
        wait_ready(f"http://127.0.0.1:{port}{path}", proc, self.log_path(label), timeout)
        return proc


class _Worktree:
    def __init__(self, path: str):
        self.path = path

    def stop(self) -> None:
        subprocess.run(["git", "worktree", "remove", "--force", self.path], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _stop(item, timeout: float = 5.0) -> None:
    if isinstance(item, _Worktree):
        item.stop()
        return
    if isinstance(item, EmbeddedMongo):
        item.stop()
        return
    if isinstance(item, StoreHandle):
        _drop(item)
        return
    if item.poll() is None:
        item.send_signal(signal.SIGTERM)
        try:
            item.wait(timeout)
        except subprocess.TimeoutExpired:
            item.kill()
            item.wait()


def _drop(handle: StoreHandle) -> None:
    """Removes the run's database from a MongoDB we did not start."""
    from pymongo import MongoClient

    client = MongoClient(handle.uri, serverSelectionTimeoutMS=3000)
    try:
        client.drop_database(handle.db)
    except Exception as exc:  # the figures are already printed; say so and go on
        print(f"bench: could not drop database {handle.db}: {exc}", file=sys.stderr)
    finally:
        client.close()


def wait_ready(url: str, proc: subprocess.Popen, log_path: str, timeout: float = 30.0) -> None:
    """Polls `url` until it answers 200; fails fast if the process exits first."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if proc.poll() is not None:
            raise StartupError(f"{proc.label} exited with status {proc.returncode}: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise StartupError(f"{proc.label} did not answer {url} within {timeout:.0f} s: {_tail(log_path)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


__all__ = ["Fleet", "StartupError", "StoreHandle", "free_port", "server_env", "wait_ready"]
