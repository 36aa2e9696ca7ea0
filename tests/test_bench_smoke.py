"""The benchmarks still run end to end: each in its --quick configuration, as a real subprocess.

Only that they finish and print their figures is checked; timings are for people, not asserts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

OUTPUT = os.path.join(ROOT, "test-output", "bench")


def run_bench(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", name, "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("name, figures", [
    ("messages", ["bare Tornado hello", "POST /wx plaintext", "POST /wx AES safe mode", "plaintext_rps / bare_rps"]),
    ("callbacks", ["wxauth /wx/page/wxauthor", "blocking requests.get handler", "callbacks/s",
                   "blocking_wall / async_wall"]),
])
def test_benchmark_runs_and_prints_its_figures(name, figures):
    done = run_bench(name)
    assert done.returncode == 0, done.stderr[-2000:]
    for label in figures:
        assert label in done.stdout
    with open(os.path.join(OUTPUT, f"{name}-quick.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["benchmark"] == name and data["quick"] is True
    assert all(target["requests"] > 0 for target in data["targets"].values())


def test_soak_quick_runs():
    """30 s of the soak's mixed load: it runs and prints its rows; no figure is asserted."""
    done = run_bench("soak")
    assert done.returncode == 0, done.stderr[-2000:]
    for label in ("interval", "req/s", "p99 ms", "errors", "server RSS MiB", "no error responses"):
        assert label in done.stdout
    with open(os.path.join(OUTPUT, "soak-quick.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["benchmark"] == "soak" and data["quick"] is True
    assert len(data["intervals"]) >= 2


def test_followers_quick_runs_and_every_follower_lands():
    done = run_bench("followers")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "followers/s" in done.stdout and "trips/follower" in done.stdout
    with open(os.path.join(OUTPUT, "followers-quick.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["followers"] == data["stored_subscribed"] == 2003


def test_notify_quick_runs_and_is_exactly_once_after_its_sigkill():
    done = run_bench("notify")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(OUTPUT, "notify-quick.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["messages_delivered"] == data["outcomes_sent"] == 2003 and data["duplicates"] == 0
