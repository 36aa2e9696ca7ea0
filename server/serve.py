"""Runs the service: embedded store, sockets, worker processes, the sandbox, and orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time

import tornado.httpserver
import tornado.netutil

import wxconfig
from server.connections import BoundedHTTPServer, raise_fd_limit
from server.embedded import EmbeddedMongo, free_port
from server.lifeline import die_with_parent

log = logging.getLogger("wxauth")

SHUTDOWN_GRACE = 10.0  # requests in flight get this long to finish after SIGTERM

def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("WX_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        stream=sys.stderr,
    )
    # pymongo's own debug chatter names hosts and commands; keep it at warnings.
    logging.getLogger("pymongo").setLevel(logging.WARNING)


def run(config, processes: int = 1, sandbox_port: int | None = None) -> int:
    configure_logging()
    embedded = None
    metrics_dir = None
    uri = config.mongodb_uri
    soft, hard = raise_fd_limit()
    if soft < 4096:
        log.warning("only %d file descriptors (hard limit %d): about %d clients at once; raise it with ulimit -n",
                    soft, hard, soft // 2)
    try:
        if uri is None:
            embedded = EmbeddedMongo(config.data_dir)
            uri = embedded.start()
        sockets = tornado.netutil.bind_sockets(config.port, config.host)
        sandbox_sockets = None
        if config.sandbox:
            sandbox_sockets, config = _bind_sandbox(config, sandbox_port)
        processes = processes if processes > 0 else (os.cpu_count() or 1)
        if processes > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Before any metric exists: each worker then writes its numbers to files here.
            import tempfile

            metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="wxauth-metrics-")
        if processes == 1:
            return asyncio.run(serve_process(config, uri, sockets, sandbox_sockets, task_id=0))
        return _supervise(config, uri, sockets, sandbox_sockets, processes)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except RuntimeError as exc:
        log.error("cannot start: %s", exc)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


_MAIN_PID = os.getpid()


def _sighup_ignored(*_args) -> None:
    log.warning("SIGHUP ignored: wxauth reads its settings only at start; restart it (SIGTERM, then start) to apply changes")


def _bind_sandbox(config, sandbox_port: int | None):
    """The stand-in WeChat gets its own port; the server then talks to it instead of WeChat."""
    port = sandbox_port or config.port + 1
    try:
        sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    except OSError:
        if sandbox_port:
            raise
        port = free_port()
        sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    overrides = {}
    if not os.environ.get("WX_API_BASE"):
        overrides["api_base"] = base
    if not os.environ.get("WX_OPEN_BASE"):
        overrides["open_base"] = base
    return sockets, config.with_overrides(**overrides)


def _supervise(config, uri, sockets, sandbox_sockets, processes: int) -> int:
    """Forks the workers before any client exists (PyMongo and aiohttp are not fork-safe),
    forwards SIGTERM/SIGINT to them and waits; a worker that dies unexpectedly is replaced."""
    children: dict[int, int] = {}
    stopping = False
    supervisor = os.getpid()

    def spawn(task_id: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor answers SIGHUP for all
            die_with_parent(supervisor)
            code = 1
            try:
                code = asyncio.run(serve_process(config, uri, sockets, sandbox_sockets if task_id == 0 else None, task_id))
            finally:
                os._exit(code)
        children[pid] = task_id

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, _sighup_ignored)
    for task_id in range(processes):
        spawn(task_id)
    log.info("started %d worker processes", processes)
    deadline = None
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG if stopping else 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == 0:
            deadline = deadline or time.monotonic() + SHUTDOWN_GRACE + 2
            if time.monotonic() > deadline:
                for left in children:
                    os.kill(left, signal.SIGKILL)
            time.sleep(0.05)
            continue
        task_id = children.pop(pid)
        if not stopping:
            log.error("worker %d (pid %d) exited with status %d; starting a new one", task_id, pid, status)
            time.sleep(0.5)  # do not spin if the worker cannot start at all
            spawn(task_id)
    return 0


async def serve_process(config, uri: str, sockets: list[socket.socket], sandbox_sockets, task_id: int) -> int:
    from server.app import make_app
    from server.runtime import close_services, open_services

    services = await open_services(config, uri)
    sandbox_server = None
    if config.sandbox and task_id == 0:
        from server.sandbox.demo import seed_demo

        sandbox_server = start_sandbox_server(config, sandbox_sockets)
        try:
            await seed_demo(services)  # publishes the menu to the stand-in: it must be up first
        except Exception as exc:
            log.warning("could not seed the demo (%s): %s", type(exc).__name__, exc)
    app = make_app(config, services)
    server = BoundedHTTPServer(app, xheaders=False, max_body_size=1024 * 1024)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if task_id == 0 and os.getpid() == _MAIN_PID:
        # One process: SIGHUP (a closed terminal, `kill -HUP` out of habit) must not end it silently.
        loop.add_signal_handler(signal.SIGHUP, _sighup_ignored)
    if task_id == 0:
        log.info("wxauth listening on http://%s:%d (public URL %s)", config.host, config.port, config.app_host)
        if config.sandbox:
            log.info("WeChat stand-in: open %s/ to chat as a follower", config.api_base)
            if config.admin_password == wxconfig.SANDBOX_ADMIN_PASSWORD:
                log.info("admin: %s/admin (sandbox password: %s)", config.app_host, config.admin_password)
    await stop.wait()
    log.info("stopping: no new connections, finishing requests in flight")
    server.stop()
    if sandbox_server is not None:
        sandbox_server.stop()
    try:
        await asyncio.wait_for(app.wx_inflight.wait_idle(), SHUTDOWN_GRACE)
    except asyncio.TimeoutError:
        log.warning("%d requests still running after %.0f s; closing anyway", app.wx_inflight.count, SHUTDOWN_GRACE)
    await server.close_all_connections()
    await close_services(services)
    return 0


def start_sandbox_server(config, sockets):
    from server.sandbox import Sandbox, make_sandbox_app

    sandbox = Sandbox(config.appid, config.appsecret, config.token, aes_key=config.aes_key,
                      original_id=config.original_id or wxconfig.SANDBOX_ORIGINAL_ID,
                      web_appid=config.web_appid, web_secret=config.web_appsecret,
                      server_url=config.app_host)
    server = tornado.httpserver.HTTPServer(make_sandbox_app(sandbox))
    server.add_sockets(sockets)
    return server
