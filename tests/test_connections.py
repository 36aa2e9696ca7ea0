"""Connection limits: slow clients are cut off, the connection cap holds, running out of descriptors is calm."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import tornado.web

from conftest import ROOT
from procs import server_env
from server.connections import BODY_TIMEOUT, HEADER_TIMEOUT, BoundedHTTPServer
from server.embedded import free_port


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hello")


def _server(io_loop, **kwargs):
    server = BoundedHTTPServer(tornado.web.Application([(r"/", Hello)]), **kwargs)
    port = free_port()
    server.listen(port, "127.0.0.1")
    return server, port


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection within `seconds` (the read returns b"")."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_defaults_are_seconds_not_tornados_hour(io_loop):
    server, _ = _server(io_loop)
    try:
        assert server.conn_params.header_timeout == HEADER_TIMEOUT <= 60
        assert server.conn_params.body_timeout == BODY_TIMEOUT <= 60
    finally:
        server.stop()


@pytest.mark.gen_test
async def test_a_half_sent_request_is_cut_off(io_loop):
    import asyncio

    server, port = _server(io_loop, idle_connection_timeout=0.5)
    try:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # slowloris: the headers never end
        assert await asyncio.to_thread(_closed_within, sock, 10)
        sock.close()
    finally:
        server.stop()


@pytest.mark.gen_test
async def test_connections_over_the_cap_are_closed_at_once(io_loop):
    import asyncio

    server, port = _server(io_loop, max_connections=2)
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        await asyncio.sleep(0.1)  # let the loop accept them (a benchmark-style wait in a unit test of accept)
        extra = socket.create_connection(("127.0.0.1", port))
        assert await asyncio.to_thread(_closed_within, extra, 5)
        for sock in held + [extra]:
            sock.close()
    finally:
        server.stop()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_is_no_busy_loop_and_no_log_storm(mongo_uri, db_name):
    port = free_port()
    env = server_env(port, free_port(), db_name, mongo_uri)
    limit = 96
    proc = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stderr), daemon=True)
    reader.start()
    held: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while not any("listening on" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "\n".join(lines[-20:])
            time.sleep(0.05)
        for _ in range(limit + 20):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        deadline = time.monotonic() + 10
        while not any("out of file descriptors" in line for line in lines):
            assert time.monotonic() < deadline, "the server never ran out of descriptors"
            time.sleep(0.05)
        before = _cpu_seconds(proc.pid)
        time.sleep(2.0)  # measuring CPU over an interval is the point here
        busy = (_cpu_seconds(proc.pid) - before) / 2.0
        assert busy < 0.5, f"{busy:.2f} CPU seconds per second while out of descriptors"
        assert sum("out of file descriptors" in line for line in lines) <= 2
        assert not any("Traceback" in line for line in lines)
        for sock in held:
            sock.close()
        held.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not serve again"
                time.sleep(0.1)
        print(f"CPU while out of descriptors: {busy:.3f} s per second")
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        proc.wait(20)
