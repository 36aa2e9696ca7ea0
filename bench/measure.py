"""Runs the load generator in its own process and turns its raw result into figures."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import time

from bench.loadgen import Job, Result
from bench.procs import ROOT

GENERATOR = "python raw-asyncio HTTP/1.1 client (bench/loadgen.py), 1 process"


def run_load(job: Job, workdir: str, label: str) -> Result:
    """Runs one job in a fresh generator process and returns its result."""
    job_path = os.path.join(workdir, label + ".job")
    result_path = os.path.join(workdir, label + ".result")
    with open(job_path, "wb") as fh:
        pickle.dump(dict(vars(job)), fh)
    # Its own session keeps a terminal's Ctrl-C away from it; subprocess.run kills it when we are
    # interrupted, before the servers are stopped.
    subprocess.run([sys.executable, "-m", "bench.loadgen", job_path, result_path], cwd=ROOT, check=True,
                   timeout=job.time_limit * 2 + 60, start_new_session=True)
    with open(result_path, "rb") as fh:
        return Result(**pickle.load(fh))


def merge(results: list[Result]) -> Result:
    """Rounds of one target as a single result: their requests, wall time and CPU added up."""
    merged = Result()
    for result in results:
        merged.wall += result.wall
        merged.latencies += result.latencies
        merged.statuses.update(result.statuses)
        merged.locations.update(result.locations)
        merged.unexpected += result.unexpected
        merged.unfinished += result.unfinished
        merged.errors = (merged.errors + result.errors)[:5]
        merged.samples += result.samples
        for name, seconds in result.cpu.items():
            merged.cpu[name] = merged.cpu.get(name, 0.0) + seconds
    return merged


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def figures(result: Result) -> dict:
    """The numbers a benchmark prints for one target."""
    done = len(result.latencies)
    out = {
        "requests": done,
        "wall_s": round(result.wall, 3),
        "rps": round(done / result.wall, 1) if result.wall else 0.0,
        "p50_ms": round(percentile(result.latencies, 50) * 1000, 2) if done else None,
        "p99_ms": round(percentile(result.latencies, 99) * 1000, 2) if done else None,
        "max_ms": round(max(result.latencies) * 1000, 2) if done else None,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "unexpected": result.unexpected,
        "unfinished": result.unfinished,
        "errors": result.errors,
    }
    if result.cpu and result.wall:
        # CPU seconds per wall second: ~1.0 means that process was saturating one core.
        out["cpu_per_wall"] = {name: round(sec / result.wall, 2) for name, sec in result.cpu.items()}
    if result.cpu and done:
        # CPU per request is steadier than req/s when other work shares the machine.
        out["cpu_ms_per_request"] = {name: round(sec * 1000 / done, 3) for name, sec in result.cpu.items()}
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def machine() -> dict:
    """What the figures were measured on, including how busy the machine already was."""
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform,
            "load_average_1min_before": round(os.getloadavg()[0], 2), "generator": GENERATOR,
            "code": code_version(), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def code_version() -> str:
    """The commit measured, marked `+changes` when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def log_problems(path: str) -> int:
    """WARNING and ERROR lines in a server log (e.g. replies that fell back from MongoDB)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return sum(1 for line in fh if " WARNING " in line or " ERROR " in line)
    except OSError:
        return 0
