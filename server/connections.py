"""The HTTP server's limits: timeouts, a cap on connections, and no busy loop when descriptors run out."""

from __future__ import annotations

import errno
import logging
import resource
import socket

import tornado.httpserver
from tornado.ioloop import IOLoop

from server.ratelog import RateLimitedLog

log = logging.getLogger("wxauth")

# Tornado keeps an idle or half-sent request for an hour by default: a slowloris client holding
# thousands of connections that way exhausts the server (CWE-400). These are per connection.
HEADER_TIMEOUT = 20.0    # a request line and headers must arrive within this (also idle keep-alive)
BODY_TIMEOUT = 20.0      # and the body within this; /wx bodies are a few KiB
MAX_CONNECTIONS = 10_000  # open at once per process; more are closed at once
ACCEPT_PAUSE = 0.5        # seconds without accepting after the process ran out of descriptors
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_ratelog = RateLimitedLog(log, interval=60.0)


def raise_fd_limit() -> tuple[int, int]:
    """Raises the soft limit on open files to the hard limit (a default of 1024 is ~500 clients)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


class BoundedHTTPServer(tornado.httpserver.HTTPServer):
    """HTTPServer with the limits above: a cap on connections and a calm accept loop."""

    def initialize(self, *args, max_connections: int = MAX_CONNECTIONS, **kwargs) -> None:
        kwargs.setdefault("idle_connection_timeout", HEADER_TIMEOUT)
        kwargs.setdefault("body_timeout", BODY_TIMEOUT)
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections

    def handle_stream(self, stream, address) -> None:
        if len(self._connections) >= self.max_connections:
            _ratelog.warning("cap", "refused a connection: %d open, the most one process keeps (MAX_CONNECTIONS)",
                             len(self._connections))
            stream.close()
            return
        super().handle_stream(stream, address)

    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = _accept_handler(sock, self._handle_connection)


def _accept_handler(sock: socket.socket, callback):
    """Tornado's accept loop, but out of descriptors it pauses instead of spinning.

    Tornado lets EMFILE escape its handler; the listening socket stays readable, so the loop
    calls the handler again at once: 100 % CPU and a traceback per turn. Here accepting stops
    for ACCEPT_PAUSE seconds, with one log line a minute, and resumes by itself.
    """
    loop = IOLoop.current()
    state = {"removed": False}

    def accept(fd, events) -> None:
        for _ in range(128):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_FDS:
                    raise
                _ratelog.warning("fds", "out of file descriptors (%s): not accepting for %.1f s; raise the limit "
                                 "(ulimit -n) or run more processes", errno.errorcode.get(exc.errno, exc.errno), ACCEPT_PAUSE)
                loop.remove_handler(sock)
                loop.call_later(ACCEPT_PAUSE, resume)
                return
            callback(connection, address)

    def resume() -> None:
        if not state["removed"]:
            loop.add_handler(sock, accept, IOLoop.READ)

    def remove() -> None:
        state["removed"] = True
        try:
            loop.remove_handler(sock)
        except (KeyError, ValueError):
            pass

    loop.add_handler(sock, accept, IOLoop.READ)
    return remove
