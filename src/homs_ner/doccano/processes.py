"""Processes of the local Doccano server: children that die with `serve`, private log files,
and stopping a process group (also one left over by an earlier, killed `serve`)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

# Run in each child between fork and exec: private files (umask 077), and death with its
# parent: if `serve` is killed (SIGKILL, a closed terminal), the kernel sends the web server
# and the worker SIGTERM and they shut down instead of running on as orphans.
_PR_SET_PDEATHSIG = 1


def private_opener(path: str, flags: int) -> int:
    """`open` opener creating files readable by their owner only."""
    return os.open(path, flags, 0o600)


def child_setup() -> None:
    """Private files (umask 077) and death with the parent (see the module doc)."""
    os.umask(0o077)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def runs_with_home(pid: int, home: Path) -> bool:
    """Whether process `pid` is alive and is a Doccano process of `home` (its environment says so)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"DOCCANO_HOME={home}".encode() in environ


def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM a process group, SIGKILL it if it is still there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` to the process group a still-running child leads."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
