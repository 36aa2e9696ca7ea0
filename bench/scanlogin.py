"""`python -m bench scanlogin`: 1,000 PC pages waiting on their scan codes at once, on one process.

Measures the server's memory per waiting page (RSS before and after the long polls are held),
and the time from a phone's 确认登录 to the waiting PC page's long poll answering, p50 and p99,
for confirms made one after another while all the others keep waiting.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
import time

import aiohttp
from tornado.web import create_signed_value

from bench.measure import machine
from bench.procs import COOKIE_SECRET, ROOT, WECHAT_UA, Fleet, free_port, server_env
from server.sandbox.testkit import DESKTOP_UA
from bench.report import finish, footer, table
from bench.soak import rss_mib

FULL = {"waiting": 1000, "confirms": 200}
QUICK = {"waiting": 50, "confirms": 10}
PHONE_OPENID = "oBenchPhone0000000000000000"
_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


async def start_pc(session: aiohttp.ClientSession, app: str) -> tuple[str, str]:
    """A PC browser opens an entry's link: (its scan token, its binding cookie header)."""
    async with session.get(f"{app}/wx/go/score", headers={"User-Agent": DESKTOP_UA}) as response:
        body = await response.text()
        token = re.search(r'data-token="([0-9a-f]{32})"', body).group(1)
        cookie = response.cookies["wx_pc"].value
    return token, f"wx_pc={cookie}"


async def long_poll(session: aiohttp.ClientSession, app: str, token: str, cookie: str, answered: dict) -> None:
    """Holds the PC page's long poll until its status changes from pending; records when."""
    since = "pending"
    while since in ("pending", "scanned"):
        async with session.get(f"{app}/wx/scan/{token}/wait?since={since}", headers={"Cookie": cookie}) as response:
            since = (await response.json())["status"]
    answered[token] = time.monotonic()


async def confirm(session: aiohttp.ClientSession, app: str, token: str, phone_cookie: str) -> float:
    """The phone opens the scan URL and taps 确认登录; returns when it sent the tap."""
    async with session.get(f"{app}/wx/scan/{token}", headers={"Cookie": phone_cookie, "User-Agent": WECHAT_UA}) as response:
        page = await response.text()
        xsrf_cookie = response.cookies["_xsrf"].value
    xsrf = _XSRF.search(page).group(1)
    sent = time.monotonic()
    async with session.post(f"{app}/wx/scan/{token}", data={"action": "confirm", "_xsrf": xsrf},
                            headers={"Cookie": f"{phone_cookie}; _xsrf={xsrf_cookie}", "User-Agent": WECHAT_UA}) as response:
        assert response.status == 200, response.status
    return sent


async def drive(app: str, pid: int, sizes: dict) -> dict:
    phone_cookie = "wx_session=" + create_signed_value(
        COOKIE_SECRET, "wx_session", json.dumps({"openid": PHONE_OPENID, "scope": "snsapi_base"})).decode()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        pcs = []
        for _ in range(sizes["waiting"]):
            pcs.append(await start_pc(session, app))
        before = rss_mib(pid)
        answered: dict[str, float] = {}
        polls = [asyncio.create_task(long_poll(session, app, token, cookie, answered)) for token, cookie in pcs]
        await asyncio.sleep(3)  # every long poll is in and parked (a benchmark may wait; tests never do)
        held = rss_mib(pid)
        latencies = []
        for token, _cookie in pcs[:sizes["confirms"]]:
            sent = await confirm(session, app, token, phone_cookie)
            while token not in answered:
                await asyncio.sleep(0.001)
            latencies.append(1000 * (answered[token] - sent))
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
    latencies.sort()
    return {
        "waiting": sizes["waiting"], "confirms": len(latencies),
        "rss_before_mib": before, "rss_waiting_mib": held,
        "kib_per_waiting_page": round((held - before) * 1024 / sizes["waiting"], 1),
        "confirm_to_pc_p50_ms": round(statistics.median(latencies), 1),
        "confirm_to_pc_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "slowest_ms": [round(v, 1) for v in latencies[-5:]],
    }


def run(quick: bool = False) -> dict:
    sizes = QUICK if quick else FULL
    info = machine()
    with Fleet("scanlogin") as fleet:
        store = fleet.store()
        port = free_port()
        env = server_env(port, free_port(), store.uri, store.db)
        subprocess.run([sys.executable, "-m", "server", "states", "set", "score", "/wx/page/bind", "--title", "查成绩"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, timeout=60)
        pid = fleet.serve("server", ["-m", "server", "--port", str(port)], port, env).pid
        figures = asyncio.run(drive(f"http://127.0.0.1:{port}", pid, sizes))
    return {"benchmark": "scanlogin", "quick": quick, "machine": info, "store": store.label, **figures,
            "goals": {"p99 < 100 ms": "met" if figures["confirm_to_pc_p99_ms"] < 100 else "missed",
                      "< 50 KiB per waiting page": "met" if figures["kib_per_waiting_page"] < 50 else "missed"}}


def render(data: dict) -> str:
    rows = [[data["waiting"], data["confirms"], data["rss_before_mib"], data["rss_waiting_mib"],
             data["kib_per_waiting_page"], data["confirm_to_pc_p50_ms"], data["confirm_to_pc_p99_ms"]]]
    head = ["PC pages waiting", "confirms", "RSS before MiB", "RSS waiting MiB", "KiB per waiting page",
            "confirm→PC p50 ms", "confirm→PC p99 ms"]
    title = f"scanlogin: long polls held by one server process, {data['store']}{' (quick)' if data['quick'] else ''}"
    lines = [table(title, head, rows), ""]
    lines += [f"{'goal: ' + k:<40} {v}" for k, v in data["goals"].items()]
    lines.append(footer(data["machine"]))
    return "\n".join(lines)


def main(quick: bool = False) -> int:
    return finish("scanlogin", run(quick), render, quick, False)
