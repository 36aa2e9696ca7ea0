"""Signals against real processes: SIGHUP never ends the server; nothing outlives a SIGKILLed supervisor."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest

from procs import ServerProcess, clean_env, server_env
from server.embedded import free_port


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc), and processes reparented away from it are lost,
    so the caller keeps the list it took while the parent was alive."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == parent:
                    found.append(int(entry))
                    todo.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


@pytest.mark.parametrize("args", [(), ("--processes", "2")])
def test_sighup_is_answered_with_one_line_and_the_server_keeps_serving(mongo_uri, db_name, args):
    server = ServerProcess(server_env(free_port(), free_port(), db_name, mongo_uri), args).start()
    try:
        if args:
            wait_until(lambda: len(children_of(server.popen.pid)) >= 2, 10, "two workers")
        server.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP ignored" in server.log, 10, "the SIGHUP line")
        assert healthy(server.url) and server.popen.poll() is None
        assert server.log.count("SIGHUP ignored") == 1
    finally:
        assert server.stop() == 0


def test_workers_and_the_embedded_store_die_with_a_killed_supervisor_and_a_restart_works(tmp_path):
    port = free_port()
    env = clean_env(**{k: v for k, v in server_env(port, free_port(), "signals", None).items()
                       if k.startswith("WX_")}, WX_DATA_DIR=str(tmp_path / "data"))
    server = ServerProcess(env, ("--processes", "2"), port=port).start()
    wait_until(lambda: len(children_of(server.popen.pid)) >= 3, 10, "two workers and the store")
    descendants = children_of(server.popen.pid)
    server.popen.kill()
    server.popen.wait()
    wait_until(lambda: not any(alive(pid) for pid in descendants), 15, "every child gone")
    again = ServerProcess(env, ("--processes", "2"), port=port).start()
    try:
        assert healthy(again.url)
    finally:
        assert again.stop() == 0
