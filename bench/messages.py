"""`python -m bench messages`: POST /wx (plaintext and AES safe mode) against a bare Tornado `hello`."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from urllib.parse import urlencode

from bench.loadgen import Job
from bench.measure import figures, log_problems, machine, merge, ratio, run_load
from bench.procs import AES_KEY, APPID, ORIGINAL_ID, ROOT, TOKEN, Fleet, free_port, server_env
from bench.report import finish, footer, table, verdict_lines
from server.sandbox.pushes import push_xml, signed_push
from server.wechat.crypto import MessageCrypto
from server.wechat.messages import parse_xml

CONCURRENCY = 50
FULL = {"count": 3000, "warmup": 500, "rounds": 5}
QUICK = {"count": 300, "warmup": 50, "rounds": 1}
# (key, page, title, keywords, scope): what an admin would have entered.
STATES = [
    ("score", "/wx/page/bind", "查成绩", "成绩,score", "snsapi_base"),
    ("me", "/wx/page/me", "我的资料", "我的,me", "snsapi_userinfo"),
    ("bind", "/wx/page/bind", "绑定学号", "绑定,bind", "snsapi_base"),
]
TEXTS = ["成绩", "score", "我的", "bind"]  # each matches one entry's keywords
FOLLOWERS = [f"oBenchFollower{i:014d}" for i in range(200)]
SAMPLES = 20


def seed_states(env: dict) -> None:
    """The map entries, through the same command line an operator uses."""
    for key, page, title, keywords, scope in STATES:
        subprocess.run([sys.executable, "-m", "server", "states", "set", key, page, "--title", title,
                        "--keywords", keywords, "--scope", scope], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)


def text_push(openid: str, content: str, msg_id: int) -> str:
    return push_xml(ORIGINAL_ID, openid, int(time.time()), "text", [("Content", content), ("MsgId", msg_id)])


def post(port: int, query: dict, body: str) -> bytes:
    data = body.encode("utf-8")
    head = (f"POST /wx?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(data)}\r\n\r\n")
    return head.encode("ascii") + data


def build_requests(port: int, count: int, first_id: int, aes: bool) -> list[bytes]:
    """`count` signed pushes, each with a fresh MsgId so dedup never short-circuits."""
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID) if aes else None
    timestamp = str(int(time.time()))
    requests = []
    for i in range(count):
        openid = FOLLOWERS[i % len(FOLLOWERS)]
        nonce = f"{first_id + i:010d}"[-10:]
        query, xml = signed_push(text_push(openid, TEXTS[i % len(TEXTS)], first_id + i), token=TOKEN, openid=openid,
                                 timestamp=timestamp, nonce=nonce, mode="safe" if aes else "plaintext",
                                 crypto=crypto, original_id=ORIGINAL_ID)
        requests.append(post(port, query, xml))
    return requests


def check_aes_samples(samples: list[tuple[bytes, bytes]]) -> int:
    """How many sampled encrypted replies decrypt (signature checked) to a reply with the link."""
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    good = 0
    for _headers, body in samples:
        try:
            envelope = parse_xml(body)
            inner = crypto.decrypt_message(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
        except Exception:
            continue
        good += "/wx/go/" in inner.decode("utf-8")
    return good


def check_plain_samples(samples: list[tuple[bytes, bytes]]) -> int:
    good = 0
    for _headers, body in samples:
        try:
            good += "/wx/go/" in parse_xml(body)["Content"]
        except Exception:
            pass
    return good


@dataclasses.dataclass
class Target:
    name: str
    port: int
    aes: bool
    expect: bytes
    watch: dict


class Pushes:
    """Signed pushes with MsgIds never used before in this run."""

    def __init__(self):
        self.next_id = 6_000_000_000_000_000_000

    def take(self, target: Target, count: int) -> list[bytes]:
        requests = build_requests(target.port, count, self.next_id, target.aes)
        self.next_id += count
        return requests


def measure(fleet: Fleet, target: Target, pushes: Pushes, sizes: dict, number: int):
    """Round `number` of one target; only the first round warms up."""
    warmup = pushes.take(target, sizes["warmup"]) if number == 0 else []
    job = Job(port=target.port, concurrency=CONCURRENCY, requests=pushes.take(target, sizes["count"] // sizes["rounds"]),
              warmup=warmup, time_limit=60.0, expect_status=200, expect_body=target.expect, samples=SAMPLES,
              watch=target.watch)
    return run_load(job, fleet.workdir, f"{target.name}-{number}")


def check_replies(target: Target, result) -> str:
    if target.name == "bare":
        return "-"
    check = check_aes_samples if target.aes else check_plain_samples
    return f"{check(result.samples)}/{len(result.samples)}"


def run(quick: bool = False, profile: bool = False, baseline: str | None = None) -> dict:
    """With `baseline` (a git revision), that revision's server is measured too, in the same rounds."""
    sizes = QUICK if quick else FULL
    info = machine()
    with Fleet("messages", profile) as fleet:
        store = fleet.store()
        app_port, bare_port = free_port(), free_port()
        env = server_env(app_port, free_port(), store.uri, store.db)
        seed_states(env)
        server_pid = fleet.serve("server", fleet.server_argv(app_port), app_port, env).pid
        bare_pid = fleet.serve("bare", ["-m", "bench.bare_app", "--port", str(bare_port)], bare_port).pid
        app_watch = {"server": server_pid, **({"store": store.pid} if store.pid else {})}
        targets = [Target("bare", bare_port, False, b"hello", {"server": bare_pid}),
                   Target("plaintext", app_port, False, b"/wx/go/", app_watch),
                   Target("aes", app_port, True, b"<Encrypt>", app_watch)]
        if baseline:
            # The same store and map; only the server's code differs.
            old_port = free_port()
            old_pid = fleet.serve("baseline", ["-m", "server", "--port", str(old_port)], old_port,
                                  server_env(old_port, free_port(), store.uri, store.db), cwd=fleet.checkout(baseline)).pid
            targets.append(Target("baseline", old_port, False, b"/wx/go/",
                                  {"server": old_pid, **({"store": store.pid} if store.pid else {})}))
        pushes, rounds, warnings = Pushes(), {t.name: [] for t in targets}, {t.name: 0 for t in targets}
        # Rounds interleave the targets, so load from elsewhere on the machine falls on all alike.
        for number in range(sizes["rounds"]):
            for target in targets:
                before = log_problems(fleet.log_path("server"))
                rounds[target.name].append(measure(fleet, target, pushes, sizes, number))
                if target.name != "bare":
                    warnings[target.name] += log_problems(fleet.log_path("server")) - before
        results = {}
        for target in targets:
            merged = merge(rounds[target.name])
            results[target.name] = {**figures(merged), "samples_with_link": check_replies(target, merged),
                                    "server_log_warnings": warnings[target.name]}
    data = summarize(results, quick, info, baseline)
    data.update(store=store.label, rounds=sizes["rounds"], profile=fleet.profile_path)
    return data


def summarize(results: dict, quick: bool, info: dict, baseline: str | None = None) -> dict:
    bare, plain, aes = results["bare"], results["plaintext"], results["aes"]
    data = {
        "benchmark": "messages",
        "quick": quick,
        "concurrency": CONCURRENCY,
        "machine": info,
        "targets": results,
        "ratios": {
            "plaintext_rps / bare_rps": ratio(plain["rps"], bare["rps"]),
            "aes_rps / plaintext_rps": ratio(aes["rps"], plain["rps"]),
            "aes_p99 / plaintext_p99": ratio(aes["p99_ms"], plain["p99_ms"]),
        },
        "goals": {
            "plaintext >= 0.5 x bare rps": _met(ratio(plain["rps"], bare["rps"]), lambda r: r >= 0.5),
            "plaintext p99 < 25 ms": _met(plain["p99_ms"], lambda p: p < 25),
            "aes within 15 % of plaintext rps": _met(ratio(aes["rps"], plain["rps"]), lambda r: r >= 0.85),
        },
    }
    if baseline:
        old = results["baseline"]
        data["baseline"] = baseline
        data["ratios"][f"plaintext_rps / plaintext_rps at {baseline}"] = ratio(plain["rps"], old["rps"])
        data["goals"][f"plaintext within 5 % of {baseline}"] = _met(ratio(plain["rps"], old["rps"]), lambda r: r >= 0.95)
    return data


def _met(value, test) -> str:
    return "n/a" if value is None else ("met" if test(value) else "missed")


def render(data: dict) -> str:
    rows = []
    labels = [("bare", "bare Tornado hello"), ("plaintext", "POST /wx plaintext"), ("aes", "POST /wx AES safe mode")]
    if data.get("baseline"):
        labels.append(("baseline", f"POST /wx plaintext at {data['baseline']}"))
    for name, label in labels:
        f = data["targets"][name]
        busy, per = f.get("cpu_per_wall", {}), f.get("cpu_ms_per_request", {})
        rows.append([label, f["requests"], f["rps"], f["p50_ms"], f["p99_ms"], f["unexpected"] + f["unfinished"],
                     f.get("samples_with_link", "-"), f["server_log_warnings"], per.get("server"), busy.get("server"),
                     per.get("store", "-"), busy.get("store", "-"), busy.get("generator")])
    head = ["target", "requests", "req/s", "p50 ms", "p99 ms", "bad", "link ok", "warnings",
            "server cpu ms/req", "server busy", "store cpu ms/req", "store busy", "generator busy"]
    title = (f"messages: POST /wx, {data['concurrency']} connections, one server process, {data['store']}, "
             f"{data['rounds']} interleaved round(s){' (quick)' if data['quick'] else ''}")
    lines = [table(title, head, rows), ""]
    lines += verdict_lines(data)
    lines.append(footer(data["machine"]))
    return "\n".join(lines)


def main(quick: bool = False, profile: bool = False, baseline: str | None = None) -> int:
    return finish("messages", run(quick, profile, baseline), render, quick, profile)
