"""`python -m bench followers`: a follower sync of 100,000 followers against the stand-in, on one process.

Measures followers per second, MongoDB round trips per follower (every command the driver
sends, counted by a PyMongo command listener) and the syncing process's memory after each
page of 10,000 (flat means a page's worth is all it holds).
"""

from __future__ import annotations

import asyncio
import os
import time

from pymongo import monitoring

import wxconfig
from bench.measure import machine
from bench.procs import Fleet, free_port, server_env
from bench.report import finish, footer, table
from bench.soak import rss_mib

FULL = {"followers": 100_000}
QUICK = {"followers": 2_000}
GOAL_RATE = 5_000


class CommandCounter(monitoring.CommandListener):
    """Counts the commands (round trips) the driver sends, by name."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def started(self, event) -> None:
        self.counts[event.command_name] = self.counts.get(event.command_name, 0) + 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def drive(env: dict, uri: str, db: str) -> dict:
    from server.runtime import command_services
    from server.store import Store, make_client

    config = wxconfig.load(env)
    counter = CommandCounter()
    client = make_client(uri, event_listeners=[counter])
    try:
        store = Store(client, db)
        await store.ensure_indexes()
        async with command_services(config, store) as services:
            rss: list[float] = []
            before = counter.counts.copy()
            started = time.monotonic()
            result = await services.followers.run(on_progress=lambda _p: rss.append(rss_mib(os.getpid())))
            seconds = time.monotonic() - started
            trips = sum(counter.counts.values()) - sum(before.values())
            stored = await store.users.count_documents({"subscribed": True})
    finally:
        await client.close()
    return {"followers": result["seen"], "stored_subscribed": stored, "seconds": round(seconds, 2),
            "followers_per_s": round(result["seen"] / seconds), "round_trips": trips,
            "round_trips_per_follower": round(trips / max(result["seen"], 1), 4),
            "rss_first_page_mib": rss[0] if rss else None, "rss_last_page_mib": rss[-1] if rss else None,
            "rss_growth_mib": round(rss[-1] - rss[0], 1) if len(rss) > 1 else 0.0}


def run(quick: bool = False) -> dict:
    sizes = QUICK if quick else FULL
    info = machine()
    with Fleet("followers") as fleet:
        store = fleet.store()
        wechat_port = free_port()
        env = server_env(free_port(), wechat_port, store.uri, store.db)
        fleet.serve("standin", ["-m", "bench.standin", "--port", str(wechat_port), "--population",
                                str(sizes["followers"])], wechat_port, env)
        figures = asyncio.run(drive(env, store.uri, store.db))
    rate_ok = figures["followers_per_s"] >= GOAL_RATE
    flat = figures["rss_growth_mib"] < 20
    return {"benchmark": "followers", "quick": quick, "machine": info, "store": store.label, **figures,
            "goals": {f">= {GOAL_RATE:,} followers/s": "met" if rate_ok else "missed",
                      "memory flat (< 20 MiB growth over the run)": "met" if flat else "missed"}}


def render(data: dict) -> str:
    head = ["followers", "seconds", "followers/s", "round trips", "trips/follower", "RSS page 1 MiB",
            "RSS last page MiB"]
    rows = [[data["followers"], data["seconds"], data["followers_per_s"], data["round_trips"],
             data["round_trips_per_follower"], data["rss_first_page_mib"], data["rss_last_page_mib"]]]
    title = f"followers: one sync process, stand-in in another, {data['store']}{' (quick)' if data['quick'] else ''}"
    lines = [table(title, head, rows), ""]
    lines += [f"{'goal: ' + k:<50} {v}" for k, v in data["goals"].items()]
    lines.append(footer(data["machine"]))
    return "\n".join(lines)


def main(quick: bool = False) -> int:
    return finish("followers", run(quick), render, quick, False)
