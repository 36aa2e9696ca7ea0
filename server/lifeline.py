"""Child processes (workers, the embedded store) that never outlive the process that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """In a freshly forked child: get `sig` when the parent dies, even by SIGKILL.

    Without it a SIGKILLed supervisor leaves its workers holding the port and the embedded store
    holding its data directory, and the next start fails or talks to an orphan. Linux only; on
    other systems this does nothing (the supervisor's SIGTERM handler still stops them).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except OSError:
        return
    # The parent may have died between fork() and prctl(): then nobody will send the signal.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
