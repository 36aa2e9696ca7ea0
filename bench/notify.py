"""`python -m bench notify`: a template notification to 100,000 followers, SIGKILLed halfway and resumed.

`python -m server notify --all` runs at WX_NOTIFY_RATE against the stand-in; at 50 % it is
killed with SIGKILL, its lease is let run out, and `notify --resume` finishes the job. Measures
the send rate of each half against the configured rate, and checks the totals: every follower
got the message exactly once (the stand-in counts deliveries per client_msg_id).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from bench.measure import machine
from bench.procs import ROOT, Fleet, free_port, server_env
from bench.report import finish, footer, table

FULL = {"followers": 100_000, "rate": 1000}
QUICK = {"followers": 2_000, "rate": 400}
TEMPLATE = "tplGradesPublished0000000000000000000000001"
VALUES = {"thing1": "你的成绩已发布", "thing2": "高等数学", "time3": "2026年1月20日 10:00"}


def _cli(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=True)


def _sent(line: str) -> int:
    """The sent count of a progress line: "notify:…: 1,234 sent, 0 failed, …"."""
    return int(line.split(": ", 1)[1].split(" sent")[0].replace(",", ""))


def run(quick: bool = False) -> dict:
    sizes = QUICK if quick else FULL
    info = machine()
    with Fleet("notify") as fleet:
        store = fleet.store()
        wechat_port = free_port()
        env = server_env(free_port(), wechat_port, store.uri, store.db, WX_NOTIFY_RATE=sizes["rate"])
        fleet.serve("standin", ["-m", "bench.standin", "--port", str(wechat_port), "--population",
                                str(sizes["followers"]), "--no-template-events"], wechat_port, env)
        _cli(env, "followers", "sync")
        _cli(env, "states", "set", "score", "/wx/page/grades", "--title", "查成绩")
        data = os.path.join(fleet.workdir, "data.json")
        with open(data, "w", encoding="utf-8") as fh:
            json.dump(VALUES, fh, ensure_ascii=False)
        proc = subprocess.Popen([sys.executable, "-m", "server", "notify", "--template", TEMPLATE, "--entry", "score",
                                 "--data", data, "--all"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        job = proc.stdout.readline().split()[1]
        started = time.monotonic()
        first_sent = 0
        total = sizes["followers"] + 3  # the stand-in's own three subscribed followers too
        while first_sent < total // 2:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError("the notification ended before it could be killed: " + proc.stderr.read()[-500:])
            first_sent = _sent(line)
        first_seconds = time.monotonic() - started
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        from pymongo import MongoClient

        with MongoClient(store.uri) as client:
            # The killed runner's lease would run out within 30 s; a benchmark does not wait for it.
            client[store.db].jobs.update_one({"_id": job}, {"$set": {"lease_until": 0}})
            recorded_at_kill = client[store.db].notify_sends.count_documents({"job": job})
        resumed = time.monotonic()
        out = _cli(env, "notify", "--resume", job).stdout
        second_seconds = time.monotonic() - resumed
        with MongoClient(store.uri) as client:
            outcomes = client[store.db].notify_sends.count_documents({"job": job, "status": "sent"})
            # The resumed run's own clock (taken → finished), without the command's start-up.
            doc = client[store.db].jobs.find_one({"_id": job})
            runner_seconds = float(doc["finished_at"]) - float(doc["taken_at"])
            runner_sent = int(doc["sent"]) - int(doc.get("done_at_take") or 0)
        with urllib.request.urlopen(f"http://127.0.0.1:{wechat_port}/bench/deliveries", timeout=10) as response:
            deliveries = json.load(response)
    second_sent = outcomes - recorded_at_kill
    figures = {
        "followers": total, "rate_setting": sizes["rate"], "job": job,
        "first_half_sent": first_sent, "first_half_s": round(first_seconds, 2),
        "first_half_rate": round(first_sent / first_seconds, 1),
        "resumed_sent": second_sent, "resumed_command_s": round(second_seconds, 2),
        "resumed_s": round(runner_seconds, 2), "resumed_rate": round(runner_sent / runner_seconds, 1),
        "recorded_at_kill": recorded_at_kill, "outcomes_sent": outcomes, "messages_delivered": deliveries["messages"],
        "duplicates": deliveries["duplicates"], "resume_output": out.strip().splitlines()[-1],
    }
    ratio = min(figures["first_half_rate"], figures["resumed_rate"]) / sizes["rate"]
    figures["rate_ratio"] = round(ratio, 3)
    exact = deliveries["messages"] == total and deliveries["duplicates"] == 0 and outcomes == total
    return {"benchmark": "notify", "quick": quick, "machine": info, "store": store.label, **figures,
            "goals": {">= 95 % of the configured rate": "met" if ratio >= 0.95 else "missed",
                      "exactly once after SIGKILL at 50 %": "met" if exact else "missed"}}


def render(data: dict) -> str:
    head = ["followers", "rate setting", "first half sent", "first half /s", "resumed sent", "resumed /s",
            "delivered", "duplicates"]
    rows = [[data["followers"], data["rate_setting"], data["first_half_sent"], data["first_half_rate"],
             data["resumed_sent"], data["resumed_rate"], data["messages_delivered"], data["duplicates"]]]
    title = f"notify: one job, SIGKILL at 50 % and resume, {data['store']}{' (quick)' if data['quick'] else ''}"
    lines = [table(title, head, rows), "", f"{'slowest half / setting':<50} {data['rate_ratio']}"]
    lines += [f"{'goal: ' + k:<50} {v}" for k, v in data["goals"].items()]
    lines.append(footer(data["machine"]))
    return "\n".join(lines)


def main(quick: bool = False) -> int:
    return finish("notify", run(quick), render, quick, False)
