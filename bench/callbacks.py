"""`python -m bench callbacks`: /wx/page/wxauthor under load, beside the tutorials' blocking callback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from bench.blocking_app import TARGET as BLOCKING_TARGET
from bench.loadgen import Job
from bench.measure import figures, log_problems, machine, ratio, run_load
from bench.procs import ROOT, WECHAT_UA, Fleet, free_port, server_env
from bench.report import finish, footer, table, verdict_lines
from bench.standin import bench_openid

KEY, TARGET = "score", "/wx/page/bind"  # a snsapi_base entry: one code exchange per callback
SLOW = 0.2  # the stand-in's answer time for the concurrency test, seconds
FULL = {"burst": 200, "burst_warmup": 20, "steady": 1000, "steady_warmup": 100, "steady_concurrency": 50}
QUICK = {"burst": 20, "burst_warmup": 5, "steady": 100, "steady_warmup": 10, "steady_concurrency": 20}
PREPARE_CONCURRENCY = 20
BLOCKING_WARMUP = 2


class Followers:
    """Hands out benchmark followers in order, so no two callbacks share an openid."""

    def __init__(self):
        self.next = 0

    def take(self, n: int) -> list[str]:
        openids = [bench_openid(i) for i in range(self.next, self.next + n)]
        self.next += n
        return openids


def seed_state(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "server", "states", "set", KEY, TARGET, "--title", "查成绩",
                    "--keywords", "成绩", "--scope", "snsapi_base"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


def control(standin: str, path: str, body: dict | None = None) -> dict:
    """One call of the stand-in's control API (GET without a body, POST with one)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(standin + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def mint_code(session: aiohttp.ClientSession, standin: str, openid: str) -> str:
    async with session.post(standin + "/_sandbox/codes", json={"openid": openid, "scope": "snsapi_base"}) as response:
        response.raise_for_status()
        return (await response.json())["code"]


async def begin_flow(session: aiohttp.ClientSession, app: str) -> tuple[str, str]:
    """GET /wx/go/<key> as a fresh browser: the state token and the signed state cookie it got."""
    async with session.get(f"{app}/wx/go/{KEY}", allow_redirects=False) as response:
        if response.status != 302:
            raise RuntimeError(f"/wx/go/{KEY} answered {response.status}")
        state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
        return state, response.cookies["wx_state"].value


def callback_request(port: int, code: str, state: str, cookie: str | None) -> bytes:
    head = f"GET /wx/page/wxauthor?{urlencode({'code': code, 'state': state})} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if cookie:
        head += f"Cookie: wx_state={cookie}\r\n"
    return (head + "\r\n").encode("ascii")


async def prepare(app: str | None, port: int, standin: str, openids: list[str]) -> list[bytes]:
    """One ready-to-send callback per follower: a fresh state token (own cookies) and a fresh code.
    Without `app`, callbacks for the blocking handler: a code and a dummy state, no cookie."""
    limit = asyncio.Semaphore(PREPARE_CONCURRENCY)
    # No shared cookie jar: each follower's state cookie is read from its own /wx/go answer.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": WECHAT_UA}) as session:
        async def one(openid: str) -> bytes:
            async with limit:
                state, cookie = await begin_flow(session, app) if app else ("bench", None)
                return callback_request(port, await mint_code(session, standin, openid), state, cookie)

        return await asyncio.gather(*(one(o) for o in openids))


def exchanges(standin: str) -> int:
    return control(standin, "/_sandbox/calls").get("/sns/oauth2/access_token", 0)


def measure(fleet: Fleet, label: str, standin: str, job: Job, target: str, log: str) -> dict:
    """Runs one job; its figures plus the 302s to the target and the code exchanges it caused."""
    before, problems = exchanges(standin), log_problems(log)
    result = run_load(job, fleet.workdir, label)
    out = figures(result)
    out["redirected_to_target"] = result.locations.get(target, 0)
    out["code_exchanges"] = exchanges(standin) - before - len(job.warmup)
    out["server_log_warnings"] = log_problems(log) - problems
    return out


@dataclasses.dataclass
class Setup:
    """The running processes of one callbacks run, and where to reach them."""

    app_port: int
    blocking_port: int
    standin: str
    server_log: str
    blocking_log: str
    watch: dict            # the async server's processes whose CPU is measured
    blocking_watch: dict
    store_label: str


def start(fleet: Fleet, followers: int) -> Setup:
    store = fleet.store()
    app_port, standin_port, blocking_port = free_port(), free_port(), free_port()
    env = server_env(app_port, standin_port, store.uri, store.db)
    seed_state(env)
    standin = fleet.serve("standin", ["-m", "bench.standin", "--port", str(standin_port), "--server-url",
                                      f"http://127.0.0.1:{app_port}", "--followers", str(followers)], standin_port, env)
    server = fleet.serve("server", fleet.server_argv(app_port), app_port, env)
    blocking = fleet.serve("blocking", ["-m", "bench.blocking_app", "--port", str(blocking_port)], blocking_port, env)
    return Setup(app_port, blocking_port, f"http://127.0.0.1:{standin_port}", fleet.log_path("server"),
                 fleet.log_path("blocking"),
                 {"server": server.pid, "standin": standin.pid, **({"store": store.pid} if store.pid else {})},
                 {"server": blocking.pid, "standin": standin.pid}, store.label)


def run(quick: bool = False, profile: bool = False) -> dict:
    sizes = QUICK if quick else FULL
    info = machine()
    followers = Followers()
    with Fleet("callbacks", profile) as fleet:
        setup = start(fleet, sizes["burst_warmup"] + sizes["burst"] + sizes["steady_warmup"] + sizes["steady"])
        app = f"http://127.0.0.1:{setup.app_port}"
        burst_openids = followers.take(sizes["burst_warmup"] + sizes["burst"])
        # Everything is prepared before any clock starts: state tokens, cookies and codes.
        burst = asyncio.run(prepare(app, setup.app_port, setup.standin, burst_openids))
        blocking = asyncio.run(prepare(None, setup.blocking_port, setup.standin,
                                       burst_openids[:BLOCKING_WARMUP] + burst_openids[sizes["burst_warmup"]:]))
        steady = asyncio.run(prepare(app, setup.app_port, setup.standin,
                                     followers.take(sizes["steady_warmup"] + sizes["steady"])))

        results = {}
        control(setup.standin, "/_sandbox/control", {"latency": SLOW})
        w = sizes["burst_warmup"]
        results["async_burst"] = measure(fleet, "async-burst", setup.standin, Job(
            port=setup.app_port, concurrency=sizes["burst"], warmup=burst[:w], requests=burst[w:], time_limit=60.0,
            expect_status=302, watch=setup.watch), TARGET, setup.server_log)
        # The blocking handler serves one callback at a time: a long warm-up would only cost minutes.
        results["blocking_burst"] = measure(fleet, "blocking-burst", setup.standin, Job(
            port=setup.blocking_port, concurrency=sizes["burst"], warmup=blocking[:BLOCKING_WARMUP],
            requests=blocking[BLOCKING_WARMUP:], time_limit=sizes["burst"] * SLOW * 3 + 30, expect_status=302,
            watch=setup.blocking_watch), BLOCKING_TARGET, setup.blocking_log)
        control(setup.standin, "/_sandbox/control", {"latency": 0})
        w = sizes["steady_warmup"]
        results["async_steady"] = measure(fleet, "async-steady", setup.standin, Job(
            port=setup.app_port, concurrency=sizes["steady_concurrency"], warmup=steady[:w], requests=steady[w:],
            time_limit=60.0, expect_status=302, watch=setup.watch), TARGET, setup.server_log)
    data = summarize(results, sizes, quick, info)
    data.update(store=setup.store_label, profile=fleet.profile_path)
    return data


def summarize(results: dict, sizes: dict, quick: bool, info: dict) -> dict:
    burst, blocking = results["async_burst"], results["blocking_burst"]
    return {
        "benchmark": "callbacks",
        "quick": quick,
        "sizes": sizes,
        "standin_latency_s": SLOW,
        "machine": info,
        "targets": results,
        "ratios": {"blocking_wall / async_wall": ratio(blocking["wall_s"], burst["wall_s"])},
        "goals": {
            f"{sizes['burst']} callbacks at {int(SLOW * 1000)} ms in < 1.5 s":
                "met" if burst["wall_s"] < 1.5 and burst["redirected_to_target"] == sizes["burst"] else "missed",
        },
    }


def render(data: dict) -> str:
    sizes, targets = data["sizes"], data["targets"]
    quick = " (quick)" if data["quick"] else ""
    rows = []
    for name, label in (("async_burst", "wxauth /wx/page/wxauthor"), ("blocking_burst", "blocking requests.get handler")):
        f = targets[name]
        rows.append([label, f["requests"], f["wall_s"], f["redirected_to_target"], f["code_exchanges"],
                     f["p50_ms"], f["p99_ms"], f["server_log_warnings"], f.get("cpu_per_wall", {}).get("server")])
    head = ["target", "callbacks", "wall s", "302 to target", "exchanges", "p50 ms", "p99 ms", "warnings", "server busy"]
    lines = [table(f"callbacks: {sizes['burst']} concurrent, the stand-in answering after "
                   f"{int(data['standin_latency_s'] * 1000)} ms, one process each, {data['store']}{quick}", head, rows), ""]
    f = targets["async_steady"]
    busy, per = f.get("cpu_per_wall", {}), f.get("cpu_ms_per_request", {})
    lines.append(table(f"callbacks: {sizes['steady']} at {sizes['steady_concurrency']} concurrent, stand-in at 0 ms, "
                       f"one process{quick}",
                       ["target", "callbacks", "callbacks/s", "p50 ms", "p99 ms", "302 to target", "warnings",
                        "server cpu ms/req", "server busy", "store cpu ms/req", "store busy", "standin busy"],
                       [["wxauth /wx/page/wxauthor", f["requests"], f["rps"], f["p50_ms"], f["p99_ms"],
                         f["redirected_to_target"], f["server_log_warnings"], per.get("server"), busy.get("server"),
                         per.get("store", "-"), busy.get("store", "-"), busy.get("standin")]]))
    lines.append("")
    lines += verdict_lines(data)
    lines.append(footer(data["machine"]) + "; connections opened before the clock starts")
    return "\n".join(lines)


def main(quick: bool = False, profile: bool = False) -> int:
    return finish("callbacks", run(quick, profile), render, quick, profile)
