"""Starts and stops the embedded MongoDB-compatible server (nx-27017) used when MONGODB_URI is unset."""

from __future__ import annotations

import functools
import logging
import os
import socket
import subprocess
import sys
import time

from server.lifeline import die_with_parent

log = logging.getLogger("wxauth.embedded")

# The server runs as a child process speaking the MongoDB wire protocol over SQLite files, so
# the application uses the same driver and code path as against a real MongoDB.
_LAUNCH = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"
PORT_FILE = "embedded.port"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _answers(port: int, timeout: float = 0.5) -> bool:
    """True if something on 127.0.0.1:port completes a MongoDB ping."""
    from pymongo import MongoClient

    client = MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true",
        serverSelectionTimeoutMS=int(timeout * 1000),
        connectTimeoutMS=int(timeout * 1000),
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


class EmbeddedMongo:
    """One nx-27017 process on a free loopback port with its files under `data_dir`."""

    def __init__(self, data_dir: str, port: int | None = None):
        self.data_dir = os.path.abspath(data_dir)
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 20.0) -> str:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        self.port = self.port or free_port()
        # Its own log names collections and documents (openids): keep it out of our logs.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "--data-dir", self.data_dir, "--host", "127.0.0.1",
             "-p", str(self.port), "--log-file", os.devnull,
             "--pid-file", os.path.join(self.data_dir, "nx-27017.pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
            # It stops with us even when we are SIGKILLed, so a later start finds the data free.
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode("utf-8", "replace").strip().splitlines()
                raise RuntimeError(f"embedded MongoDB server exited: {err[-1] if err else 'no output'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded MongoDB server did not answer within {timeout:.0f} s")
            time.sleep(0.05)
        self.process.stderr.close()
        self.process.stderr = None
        with open(os.path.join(self.data_dir, PORT_FILE), "w") as fh:
            fh.write(str(self.port))
        log.info("embedded MongoDB-compatible server on 127.0.0.1:%d, data in %s", self.port, self.data_dir)
        return self.uri

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        try:
            os.unlink(os.path.join(self.data_dir, PORT_FILE))
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def running_uri(data_dir: str) -> str | None:
    """The URI of an embedded server a running wxauth already started on `data_dir`, if any.

    The command line uses it so that `python -m server states ...` reaches the same data as the
    server without opening the SQLite files from a second process.
    """
    try:
        with open(os.path.join(os.path.abspath(data_dir), PORT_FILE)) as fh:
            port = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    return f"mongodb://127.0.0.1:{port}/?directConnection=true" if _answers(port) else None
