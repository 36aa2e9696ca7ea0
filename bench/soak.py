"""`python -m bench soak [--minutes N] [--quick]`: minutes of steady mixed load; req/s, p99 and RSS per interval."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import random
import time
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from bench.loadgen import cpu_seconds
from bench.measure import machine, percentile
from bench.messages import STATES, seed_states, text_push
from bench.procs import AES_KEY, APPID, ORIGINAL_ID, TOKEN, WECHAT_UA, Fleet, free_port, server_env
from bench.report import table, write_json
from bench.standin import bench_openid
from server.sandbox.pushes import push_xml, signed_push
from server.wechat.crypto import MessageCrypto
from server.wechat.messages import parse_xml

log = logging.getLogger("bench.soak")

# Paced well below saturation (the messages benchmark sees ~2000 req/s on one process): a soak
# measures whether the server stays the same over time, not how much it can take.
RATE = 150.0
# One cycle of operations, in a fixed shuffled order: mostly messages, as an account sees them.
MIX = {"text": 8, "text_aes": 4, "retry": 2, "subscribe": 2, "click": 2, "flow_base": 1, "flow_userinfo": 1}
REQUESTS_PER_OP = {"flow_base": 3, "flow_userinfo": 3}  # /wx/go, the callback, the page; else 1
TEXTS = [("成绩", "score"), ("score", "score"), ("我的", "me"), ("绑定", "bind")]  # (content, key it matches)
FLOWS = {"flow_base": ("score", "snsapi_base", "/wx/page/bind"),   # (key, scope, the page it lands on)
         "flow_userinfo": ("me", "snsapi_userinfo", "/wx/page/me")}
PAGE_MARK = {"/wx/page/bind": "Bind your number"}  # /wx/page/me shows the follower's nickname instead
# Followers come back: a fixed pool keeps the users collection bounded, so memory that grows
# is the server's, not the data's.
MESSAGE_FOLLOWERS = 500
FLOW_FOLLOWERS = 1000
MAX_IN_FLIGHT = 64       # operations; past this an operation is shed (counted), not queued
RETRY_WINDOW = 20.0      # seconds: retries re-send deliveries this recent (dedup claims live ~1 min)
REQUEST_TIMEOUT = 10.0
DRAIN = 10.0             # seconds the last operations get after the load stops
CAP_FACTOR = 1.25        # hard cap on requests: this much above what the pace plans
ERROR_LOG_LIMIT = 5      # error reasons logged as they happen; all are counted


@dataclasses.dataclass(frozen=True)
class Plan:
    duration: float      # seconds of load
    interval: float      # seconds per printed row
    warmup_rows: int     # rows before the RSS baseline
    rate: float          # server requests per second
    max_requests: int

    @property
    def rows(self) -> int:
        return round(self.duration / self.interval)


def make_plan(minutes: float, quick: bool) -> Plan:
    """Per-minute rows, warm-up = the first 20 % (2 min of 10); --quick: 30 s in 10-s rows, 10 s warm-up."""
    duration, interval = (30.0, 10.0) if quick else (minutes * 60.0, 60.0)
    rows = max(1, round(duration / interval))
    warmup = 1 if quick else max(1, round(rows * 0.2))
    return Plan(duration, interval, min(warmup, rows - 1), RATE, int(RATE * duration * CAP_FACTOR))


def cycle(seed: int = 1) -> list[str]:
    ops = [op for op, weight in MIX.items() for _ in range(weight)]
    random.Random(seed).shuffle(ops)
    return ops


def rss_mib(pid: int | None) -> float | None:
    """Resident set size of a live process (Linux /proc VmRSS), MiB; None if unknown or gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


class LogTail:
    """Counts WARNING and ERROR lines a log gained since the last call, reading only the new part.

    The first few are kept: the run's log directory is removed when the run ends normally."""

    def __init__(self, path: str, keep: int = 5):
        self.path = path
        self.offset = 0
        self.keep = keep
        self.samples: list[str] = []

    def new_problems(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return 0
        # Count whole lines only; a line still being written is read next time.
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        problems = [line for line in chunk[:end].splitlines() if b" WARNING " in line or b" ERROR " in line]
        for line in problems[:self.keep - len(self.samples)]:
            self.samples.append(line.decode("utf-8", "replace")[:300])
        return len(problems)


class Interval:
    """What one printed row counts: requests to the server, their latencies, and errors."""

    def __init__(self, started: float):
        self.started = started
        self.latencies: list[float] = []
        self.errors = 0

    def record(self, latency: float | None, problem: str | None) -> None:
        if latency is not None:
            self.latencies.append(latency)
        if problem:
            self.errors += 1


@dataclasses.dataclass
class Delivered:
    """A push that got a good reply: a retry re-sends it and must get the same reply."""

    url: str
    body: bytes
    aes: bool
    reply: bytes          # the plaintext reply XML
    at: float


def event_push(openid: str, event: str, key: str = "") -> str:
    # A plain subscribe carries an empty EventKey, as WeChat sends it.
    return push_xml(ORIGINAL_ID, openid, int(time.time()), "event", [("Event", event), ("EventKey", key)])


class Load:
    """The paced client: runs the operation cycle against the server and fills the current interval."""

    def __init__(self, app: str, standin: str, plan: Plan):
        self.app = app
        self.standin = standin
        self.plan = plan
        self.crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
        self.interval = Interval(time.monotonic())
        self.recent: collections.deque[Delivered] = collections.deque(maxlen=200)
        self.tasks: set[asyncio.Task] = set()
        self.error_kinds: collections.Counter = collections.Counter()
        self.by_request: dict[str, list[float]] = collections.defaultdict(list)  # label -> latencies, whole run
        self.planned = 0
        self.shed = 0
        self.unfinished = 0
        self.msg_id = 7_000_000_000_000_000_000
        self.turn = 0
        self.flows = 0  # its own counter: flows sit at fixed places in the cycle, so `n` would reach few followers
        self.cpu_started = 0.0
        self.client_busy: float | None = None   # the client's CPU seconds per wall second
        self.connector: aiohttp.TCPConnector | None = None
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Load":
        self.connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT * 2)
        # Pushes carry no cookies (WeChat sends none); each authorization flow gets its own jar.
        self.session = aiohttp.ClientSession(connector=self.connector, cookie_jar=aiohttp.DummyCookieJar(),
                                             timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    # ---- pacing --------------------------------------------------------------------------------

    async def pace(self, started: float, stop: asyncio.Event) -> None:
        """Starts operations at a fixed rate until the duration, the request cap or `stop` ends it."""
        ops = cycle()
        per_cycle = sum(REQUESTS_PER_OP.get(op, 1) for op in ops)
        op_rate = self.plan.rate * len(ops) / per_cycle
        for n in range(10**9):
            at = started + n / op_rate
            if at >= started + self.plan.duration or stop.is_set():
                return
            op = ops[n % len(ops)]
            if self.planned + REQUESTS_PER_OP.get(op, 1) > self.plan.max_requests:
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            # Open loop: a slow server does not slow the arrivals; past the in-flight cap the
            # operation is dropped and counted, so a stall cannot pile up unbounded work.
            if len(self.tasks) >= MAX_IN_FLIGHT:
                self.shed += 1
                continue
            self.planned += REQUESTS_PER_OP.get(op, 1)
            task = asyncio.create_task(self.run_op(op, n))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        if self.tasks:
            _done, pending = await asyncio.wait(set(self.tasks), timeout=DRAIN)
            for task in pending:
                task.cancel()
                self.fail(None, "unfinished when the run ended")
            self.unfinished += len(pending)

    async def run_op(self, op: str, n: int) -> None:
        try:
            if op in FLOWS:
                self.flows += 1
                await self.flow(*FLOWS[op], bench_openid(self.flows % FLOW_FOLLOWERS))
            elif op == "retry":
                await self.retry()
            else:
                await self.push(op, bench_openid(n % MESSAGE_FOLLOWERS))
        except Exception as exc:  # a bug in the client must show as an error, not end the run
            self.fail(None, f"{op}: client error {type(exc).__name__}: {exc}")

    # ---- bookkeeping ---------------------------------------------------------------------------

    def fail(self, latency: float | None, problem: str) -> None:
        self.interval.record(latency, problem)
        kind = problem[:120]
        self.error_kinds[kind] += 1
        if sum(self.error_kinds.values()) <= ERROR_LOG_LIMIT:
            log.warning("soak error: %s", problem)

    def settle(self, latency: float, problem: str | None) -> None:
        if problem:
            self.fail(latency, problem)
        else:
            self.interval.record(latency, None)

    async def call(self, session: aiohttp.ClientSession, method: str, url: str, label: str, **kw):
        """One request to the server under test: (latency, status, headers, body), or None after
        recording a transport failure (refused, reset, timed out)."""
        started = time.monotonic()
        try:
            async with session.request(method, url, allow_redirects=False, **kw) as response:
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.fail(time.monotonic() - started, f"{label}: {type(exc).__name__} {exc}")
            return None
        latency = time.monotonic() - started
        self.by_request[label].append(latency)
        return latency, response.status, response.headers, body

    # ---- messages ------------------------------------------------------------------------------

    def next_push(self, op: str, openid: str) -> tuple[str, bool, str]:
        """(xml, aes, link the reply must carry) for one fresh push of kind `op`."""
        self.turn += 1
        aes = op == "text_aes" or (op in ("subscribe", "click") and self.turn % 2 == 0)
        if op in ("text", "text_aes"):
            self.msg_id += 1
            content, key = TEXTS[self.msg_id % len(TEXTS)]
            return text_push(openid, content, self.msg_id), aes, f"/wx/go/{key}"
        if op == "subscribe":
            return event_push(openid, "subscribe"), aes, "/wx/go/"
        key = STATES[self.turn % len(STATES)][0]
        return event_push(openid, "CLICK", key), aes, f"/wx/go/{key}"

    def signed(self, xml: str, aes: bool) -> tuple[str, bytes]:
        """The URL and body WeChat would POST for `xml`, in safe mode when `aes`."""
        timestamp, nonce = str(int(time.time())), str(random.randrange(10**9, 10**10))
        query, xml = signed_push(xml, token=TOKEN, timestamp=timestamp, nonce=nonce,
                                 mode="safe" if aes else "plaintext", crypto=self.crypto, original_id=ORIGINAL_ID)
        return f"{self.app}/wx?{urlencode(query)}", xml.encode("utf-8")

    def open_reply(self, status: int, body: bytes, aes: bool) -> tuple[bytes | None, str | None]:
        """(plaintext reply XML, None), or (None, what is wrong with the reply)."""
        if status != 200:
            return None, f"status {status}"
        if not aes:
            return body, None
        try:
            envelope = parse_xml(body)
            return self.crypto.decrypt_message(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"],
                                               envelope["Encrypt"]), None
        except Exception as exc:
            return None, f"encrypted reply does not open: {type(exc).__name__}"

    async def push(self, op: str, openid: str) -> None:
        xml, aes, link = self.next_push(op, openid)
        url, body = self.signed(xml, aes)
        sent = await self.call(self.session, "POST", url, f"POST /wx {op}", data=body,
                               headers={"Content-Type": "text/xml"})
        if sent is None:
            return
        latency, status, _headers, reply_body = sent
        reply, problem = self.open_reply(status, reply_body, aes)
        if reply is not None and link not in reply.decode("utf-8", "replace"):
            problem = f"reply without {link}"
        self.settle(latency, problem and f"POST /wx {op}: {problem}")
        if problem is None:
            self.recent.append(Delivered(url, body, aes, reply, time.monotonic()))

    async def retry(self) -> None:
        """WeChat re-sends a push it got no answer to (docs/wechat-protocol.md §4.4): same reply expected."""
        horizon = time.monotonic() - RETRY_WINDOW
        candidates = [d for d in self.recent if d.at >= horizon]
        if not candidates:  # the first second of the run: nothing to retry yet
            await self.push("text", bench_openid(0))
            return
        first = random.choice(candidates)
        sent = await self.call(self.session, "POST", first.url, "POST /wx retry", data=first.body,
                               headers={"Content-Type": "text/xml"})
        if sent is None:
            return
        latency, status, _headers, body = sent
        reply, problem = self.open_reply(status, body, first.aes)
        if reply is not None and reply != first.reply:
            problem = "a different reply than the first delivery got"
        self.settle(latency, problem and f"POST /wx retry: {problem}")

    # ---- authorization flows -------------------------------------------------------------------

    async def flow(self, key: str, scope: str, target: str, openid: str) -> None:
        """A follower taps the link in a fresh browser, consents, and lands on the page that knows them."""
        jar = aiohttp.CookieJar(unsafe=True)  # unsafe: it must keep cookies of an IP-address host
        async with aiohttp.ClientSession(connector=self.connector, connector_owner=False, cookie_jar=jar,
                                         headers={"User-Agent": WECHAT_UA},
                                         timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as browser:
            state = await self.go(browser, key)
            if state is None:
                return
            code = await self.mint_code(openid, scope)
            if code is None:
                return
            if await self.callback(browser, code, state, target):
                await self.page(browser, target, openid)

    async def go(self, browser: aiohttp.ClientSession, key: str) -> str | None:
        sent = await self.call(browser, "GET", f"{self.app}/wx/go/{key}", "GET /wx/go")
        if sent is None:
            return None
        latency, status, headers, _body = sent
        location = headers.get("Location", "")
        state = parse_qs(urlsplit(location).query).get("state", [None])[0]
        problem = None
        if status != 302 or not location.startswith(f"{self.standin}/connect/oauth2/authorize?") or not state:
            problem = f"GET /wx/go: {status} to {location[:80]!r}"
        self.settle(latency, problem)
        return None if problem else state

    async def mint_code(self, openid: str, scope: str) -> str | None:
        """The code WeChat would hand the browser after consent; the stand-in's time is not measured."""
        try:
            async with self.session.post(f"{self.standin}/_sandbox/codes", json={"openid": openid, "scope": scope}) as r:
                r.raise_for_status()
                return (await r.json())["code"]
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as exc:
            self.fail(None, f"stand-in code: {type(exc).__name__} {exc}")
            return None

    async def callback(self, browser: aiohttp.ClientSession, code: str, state: str, target: str) -> bool:
        url = f"{self.app}/wx/page/wxauthor?{urlencode({'code': code, 'state': state})}"
        sent = await self.call(browser, "GET", url, "GET /wx/page/wxauthor")
        if sent is None:
            return False
        latency, status, headers, _body = sent
        location = headers.get("Location", "")
        problem = None
        if status != 302 or location != target:
            problem = f"GET /wx/page/wxauthor: {status} to {location[:80]!r}"
        self.settle(latency, problem)
        return problem is None

    async def page(self, browser: aiohttp.ClientSession, target: str, openid: str) -> None:
        sent = await self.call(browser, "GET", self.app + target, f"GET {target}")
        if sent is None:
            return
        latency, status, _headers, body = sent
        # The profile page must show this follower (the stand-in names them "Bench <n>").
        mark = PAGE_MARK.get(target) or f"Bench {int(openid[6:])}"
        problem = None
        if status != 200 or mark not in body.decode("utf-8", "replace"):
            problem = f"GET {target}: {status}, no {mark!r}"
        self.settle(latency, problem)


# ---- the run ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Watched:
    server_pid: int
    store_pid: int | None
    server_exited: Callable[[], bool]
    log: LogTail


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class Rows:
    """Closes intervals into rows and prints each as it is made, so a long run shows its progress."""

    def __init__(self, watched: Watched, embedded_store: bool):
        self.watched = watched
        self.columns = [("interval", 11), ("requests", 8), ("req/s", 7), ("p50 ms", 7), ("p99 ms", 7),
                        ("errors", 6), ("server RSS MiB", 14)]
        if embedded_store:
            self.columns.append(("store RSS MiB", 13))
        self.columns += [("server busy", 11), ("load", 4)]
        self.embedded_store = embedded_store
        self.rows: list[dict] = []
        self.cpu = cpu_seconds(watched.server_pid)

    def header(self, title: str) -> None:
        rule = "  ".join("-" * w for _, w in self.columns)
        print("\n".join([title, rule, self._line([name for name, _ in self.columns]), rule]), flush=True)

    def _line(self, cells: list) -> str:
        return "  ".join(str("-" if c is None else c).ljust(w) if i == 0 else str("-" if c is None else c).rjust(w)
                         for i, (c, (_, w)) in enumerate(zip(cells, self.columns)))

    def close(self, interval: Interval, start: float, now: float) -> dict:
        length = now - interval.started
        done = len(interval.latencies)
        cpu = cpu_seconds(self.watched.server_pid)
        row = {
            "interval": f"{clock(round(interval.started - start))}-{clock(round(now - start))}",
            "end_s": round(now - start, 1),
            "requests": done,
            "rps": round(done / length, 1) if length else 0.0,
            "p50_ms": round(percentile(interval.latencies, 50) * 1000, 2) if done else None,
            "p99_ms": round(percentile(interval.latencies, 99) * 1000, 2) if done else None,
            "errors": interval.errors,
            "server_rss_mib": rss_mib(self.watched.server_pid),
            "store_rss_mib": rss_mib(self.watched.store_pid),
            "server_busy": round((cpu - self.cpu) / length, 3) if length else None,
            "server_log_warnings": self.watched.log.new_problems(),
            # Other work on the machine shows in p99; the 1-min load average says how much there was.
            "load_1min": round(os.getloadavg()[0], 2),
        }
        self.cpu = cpu
        self.rows.append(row)
        cells = [row["interval"], row["requests"], row["rps"], row["p50_ms"], row["p99_ms"], row["errors"],
                 row["server_rss_mib"]]
        if self.embedded_store:
            cells.append(row["store_rss_mib"])
        print(self._line(cells + [row["server_busy"], row["load_1min"]]), flush=True)
        return row


async def drive(load: Load, rows: Rows) -> None:
    """The load plus one row per interval; the last row waits for the last operations to finish."""
    plan = load.plan
    start = time.monotonic()
    load.interval = Interval(start)
    load.cpu_started = time.process_time()
    stop = asyncio.Event()
    pacer = asyncio.create_task(load.pace(start, stop))
    try:
        for number in range(1, plan.rows + 1):
            await _sleep_watching(start + number * plan.interval, rows.watched, stop)
            if number == plan.rows or stop.is_set():
                await pacer
                await load.drain()
            current, load.interval = load.interval, Interval(time.monotonic())
            rows.close(current, start, time.monotonic())
            load.client_busy = round((time.process_time() - load.cpu_started) / (time.monotonic() - start), 3)
            if stop.is_set():
                return
    finally:
        stop.set()
        pacer.cancel()


async def _sleep_watching(until: float, watched: Watched, stop: asyncio.Event) -> None:
    """Sleeps until `until`, ending the run early if the server process exits."""
    while (left := until - time.monotonic()) > 0:
        if watched.server_exited():
            stop.set()
            return
        await asyncio.sleep(min(left, 1.0))


async def soak(app: str, standin: str, plan: Plan, rows: Rows) -> Load:
    async with Load(app, standin, plan) as load:
        # A wall-time cap beside the request cap: a hung drain cannot hold the run open.
        await asyncio.wait_for(drive(load, rows), plan.duration + DRAIN + 60)
    return load


def growth(rows: list[dict], field: str, warmup_rows: int) -> dict:
    """RSS of the first row after warm-up against the last row's, in %; n/a when they are the same row."""
    if len(rows) <= warmup_rows + 1:
        return {"from": None, "to": None, "pct": None}
    first, last = rows[warmup_rows][field], rows[-1][field]
    pct = round((last - first) / first * 100, 2) if first and last is not None else None
    return {"from": first, "to": last, "pct": pct, "rows": f"{rows[warmup_rows]['interval']} -> {rows[-1]['interval']}"}


def summarize(plan: Plan, quick: bool, load: Load, rows: Rows, info: dict, store_label: str,
              baseline: dict, server_status: int | None) -> dict:
    table = rows.rows
    requests = sum(r["requests"] for r in table)
    errors = sum(r["errors"] for r in table)
    server_growth = growth(table, "server_rss_mib", plan.warmup_rows)
    pct = server_growth["pct"]
    return {
        "benchmark": "soak",
        "quick": quick,
        "duration_s": plan.duration,
        "interval_s": plan.interval,
        "warmup_s": plan.warmup_rows * plan.interval,
        "target_rps": plan.rate,
        "max_requests": plan.max_requests,
        "mix": MIX,
        "store": store_label,
        "machine": info,
        "rss_before_load_mib": baseline,
        "intervals": table,
        "totals": {"requests": requests, "errors": errors, "shed": load.shed, "unfinished": load.unfinished,
                   "server_log_warnings": sum(r["server_log_warnings"] for r in table),
                   "server_exit_status": server_status},
        "error_kinds": dict(load.error_kinds.most_common(10)),
        "server_log_samples": rows.watched.log.samples,
        "by_request": by_request(load.by_request),
        "client_busy": load.client_busy,
        "rss_growth": {"server": server_growth, "store": growth(table, "store_rss_mib", plan.warmup_rows)},
        "goals": {
            "server RSS growth after warm-up < 5 %": "n/a" if pct is None else ("PASS" if pct < 5 else "MISS"),
            "no error responses": "PASS" if errors == 0 and server_status is None and requests else "MISS",
        },
    }


def by_request(latencies: dict[str, list[float]]) -> dict:
    """Latency per kind of request over the whole run: which one a high p99 comes from."""
    return {label: {"requests": len(values), "p50_ms": round(percentile(values, 50) * 1000, 2),
                    "p99_ms": round(percentile(values, 99) * 1000, 2), "max_ms": round(max(values) * 1000, 2)}
            for label, values in sorted(latencies.items()) if values}


def render_summary(data: dict) -> str:
    totals, grow = data["totals"], data["rss_growth"]
    lines = ["", table("the whole run, by request", ["request", "requests", "p50 ms", "p99 ms", "max ms"],
                       [[label, f["requests"], f["p50_ms"], f["p99_ms"], f["max_ms"]]
                        for label, f in data["by_request"].items()]), ""]
    for name in ("server", "store"):
        g = grow[name]
        if g["pct"] is not None:
            lines.append(f"RSS growth after warm-up, {name + ':':<8} {g['pct']:+.2f} % ({g['from']} -> {g['to']} MiB, "
                         f"rows {g['rows']})")
    lines.append(f"total: {totals['requests']} requests, {totals['errors']} errors, {totals['shed']} operations shed, "
                 f"{totals['server_log_warnings']} server log WARNING/ERROR lines")
    for kind, count in data["error_kinds"].items():
        lines.append(f"  error x{count}: {kind}")
    for line in data["server_log_samples"]:
        lines.append(f"  server log: {line}")
    if totals["server_exit_status"] is not None:
        lines.append(f"the server exited during the run with status {totals['server_exit_status']}")
    lines += [f"{k:<42} {v}" for k, v in data["goals"].items()]
    info = data["machine"]
    lines.append(f"client: aiohttp in the bench process, paced at {data['target_rps']:.0f} req/s (open loop), "
                 f"client busy {data['client_busy']}; busy = CPU seconds per wall second; {info['cpus']} CPUs, 1-min load "
                 f"{info['load_average_1min_before']} before the run; code {info['code']}")
    return "\n".join(lines)


def title(plan: Plan, store_label: str, quick: bool) -> str:
    unit = "10 s" if quick else "minute"
    return (f"soak: {plan.duration / 60:g} min at {plan.rate:.0f} req/s, mixed messages (plaintext, AES, retries, "
            f"subscribe, CLICK) and authorization flows, one server process, {store_label}, stand-in at 0 ms; "
            f"one row per {unit}, warm-up {plan.warmup_rows * plan.interval:g} s")


def run(minutes: float = 10.0, quick: bool = False) -> tuple[dict, int]:
    plan = make_plan(minutes, quick)
    info = machine()
    with Fleet("soak") as fleet:
        store = fleet.store()
        app_port, standin_port = free_port(), free_port()
        env = server_env(app_port, standin_port, store.uri, store.db)
        seed_states(env)
        fleet.serve("standin", ["-m", "bench.standin", "--port", str(standin_port), "--server-url",
                                f"http://127.0.0.1:{app_port}", "--followers", str(FLOW_FOLLOWERS)], standin_port, env)
        server = fleet.serve("server", fleet.server_argv(app_port), app_port, env)
        watched = Watched(server.pid, store.pid, lambda: server.poll() is not None, LogTail(fleet.log_path("server")))
        baseline = {"server": rss_mib(server.pid), "store": rss_mib(store.pid)}
        rows = Rows(watched, store.pid is not None)
        rows.header(title(plan, store.label, quick))
        load = asyncio.run(soak(f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{standin_port}", plan, rows))
        status = server.poll()
    data = summarize(plan, quick, load, rows, info, store.label, baseline, status)
    return data, 0 if status is None else 1


def main(quick: bool = False, minutes: float = 10.0) -> int:
    data, code = run(minutes, quick)
    print(render_summary(data))
    path = write_json("soak-quick" if quick else "soak", data)
    print(f"written: {path}")
    return code
