"""A lean HTTP/1.1 load generator, run as its own process: `python -m bench.loadgen JOB RESULT`."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import pickle
import sys
import time

# Requests arrive pre-built as raw bytes (signatures, cookies and bodies computed beforehand), so
# the loop only writes bytes and finds the end of each reply: a generator this thin stays far from
# being the bottleneck, even beside the server on 2 cores (the benchmarks print its CPU use).
# Keep-alive connections are opened before the clock starts; latency runs from the write to the
# last byte of the reply.

CONNECT_BATCH = 50  # connects at a time: stays inside the server's listen backlog (Tornado: 128)


@dataclasses.dataclass
class Job:
    port: int
    concurrency: int
    requests: list[bytes]
    warmup: list[bytes] = dataclasses.field(default_factory=list)
    time_limit: float = 60.0
    expect_status: int | None = None
    expect_body: bytes | None = None       # must occur in every body
    samples: int = 0                        # replies returned whole, spread over the run
    watch: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> pid whose CPU to measure
    host: str = "127.0.0.1"


@dataclasses.dataclass
class Result:
    wall: float = 0.0
    latencies: list[float] = dataclasses.field(default_factory=list)
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    locations: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    unexpected: int = 0                     # replies that fail expect_status / expect_body
    unfinished: int = 0                     # still waiting when the time limit struck
    errors: list[str] = dataclasses.field(default_factory=list)
    samples: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)  # CPU seconds in the measured phase


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


class Connection(asyncio.Protocol):
    """One keep-alive connection; it tells the phase when a whole response has arrived."""

    def __init__(self, phase_ref: list):
        self.phase_ref = phase_ref
        self.transport = None
        self.buffer = bytearray()
        self.index: int | None = None
        self.sent_at = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, index: int, data: bytes) -> None:
        self.index = index
        self.sent_at = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        status, headers = parse_head(bytes(self.buffer[:end]))
        if b"content-length" not in headers:
            # Tornado sends Content-Length when a handler finishes in one go, as all ours do.
            self.phase_ref[0].fail(self, "response without Content-Length")
            self.transport.close()
            return
        total = end + 4 + int(headers[b"content-length"])
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        self.phase_ref[0].done(self, status, headers, body)

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.index is not None:
            self.phase_ref[0].fail(self, f"connection lost: {exc or 'closed by server'}")


class Phase:
    """Runs one list of requests over the open connections and records every reply."""

    def __init__(self, job: Job, requests: list[bytes], connections: list[Connection]):
        self.job = job
        self.requests = requests
        self.queue = iter(range(len(requests)))
        self.connections = connections
        self.pending = len(requests)
        self.result = Result()
        self.sample_at = set(_spread(len(requests), job.samples))
        self.finished = asyncio.get_running_loop().create_future()

    async def run(self) -> Result:
        cpu_before = self._cpu()
        started = time.perf_counter()
        for conn in self.connections:
            self.next(conn)
        if not self.pending:
            self.finished.set_result(None)
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), self.job.time_limit)
        except asyncio.TimeoutError:
            self.result.unfinished = self.pending
        self.result.wall = time.perf_counter() - started
        cpu_after = self._cpu()
        self.result.cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
        return self.result

    def _cpu(self) -> dict[str, float]:
        # Read here, at the phase's edges, so warm-up and process start-up are not counted.
        cpu = {name: cpu_seconds(pid) for name, pid in self.job.watch.items()}
        cpu["generator"] = time.process_time()
        return cpu

    def next(self, conn: Connection) -> None:
        if conn.transport is None:
            return
        index = next(self.queue, None)
        if index is not None:
            conn.send(index, self.requests[index])

    def done(self, conn: Connection, status: int, headers: dict, body: bytes) -> None:
        result = self.result
        result.latencies.append(time.perf_counter() - conn.sent_at)
        result.statuses[status] += 1
        if 300 <= status < 400:
            result.locations[headers.get(b"location", b"").decode("latin-1")] += 1
        if ((self.job.expect_status is not None and status != self.job.expect_status)
                or (self.job.expect_body is not None and self.job.expect_body not in body)):
            result.unexpected += 1
        if conn.index in self.sample_at:
            result.samples.append((b"\r\n".join(k + b": " + v for k, v in headers.items()), body))
        self._finish_one(conn)

    def fail(self, conn: Connection, reason: str) -> None:
        if len(self.result.errors) < 5:
            self.result.errors.append(reason)
        self.result.statuses[0] += 1
        self._finish_one(conn)

    def _finish_one(self, conn: Connection) -> None:
        conn.index = None
        self.pending -= 1
        if self.pending == 0 and not self.finished.done():
            self.finished.set_result(None)
        else:
            self.next(conn)


def _spread(count: int, samples: int) -> list[int]:
    if not count or not samples:
        return []
    step = max(1, count // samples)
    return list(range(0, count, step))[:samples]


async def connect(job: Job, phase_ref: list) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for start in range(0, job.concurrency, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, job.concurrency - start)
        pairs = await asyncio.gather(*(loop.create_connection(lambda: Connection(phase_ref), job.host, job.port)
                                       for _ in range(batch)))
        connections.extend(conn for _transport, conn in pairs)
    return connections


async def run(job: Job) -> Result:
    phase_ref: list = [None]  # the connections report to whichever phase is running
    connections = await connect(job, phase_ref)
    try:
        if job.warmup:
            phase_ref[0] = Phase(job, job.warmup, connections)
            await phase_ref[0].run()
        phase_ref[0] = Phase(job, job.requests, connections)
        return await phase_ref[0].run()
    finally:
        for conn in connections:
            if conn.transport is not None:
                conn.transport.close()


def main(argv: list[str]) -> int:
    job_path, result_path = argv
    # Plain dicts across the process boundary: this module runs as __main__ here.
    with open(job_path, "rb") as fh:
        job = Job(**pickle.load(fh))
    result = asyncio.run(run(job))
    with open(result_path, "wb") as fh:
        pickle.dump(dict(vars(result)), fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
