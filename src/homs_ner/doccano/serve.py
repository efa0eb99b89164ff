"""`homs-ner doccano serve`: the local Doccano in the foreground until Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from homs_ner.doccano.server import DEFAULT_ADMIN_USERNAME, PASSWORD_FILE, DoccanoServer


def serve(
    home: Path,
    port: int = 8000,
    *,
    venv: Path,
    admin_username: str = DEFAULT_ADMIN_USERNAME,
    admin_password: str | None = None,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> None:
    """Run Doccano in the foreground until Ctrl-C or SIGTERM, then stop it cleanly.

    Raises :class:`DoccanoServerError` if the web server or the worker dies meanwhile.
    """
    server = DoccanoServer(
        home, venv=venv, port=port, admin_username=admin_username, admin_password=admin_password
    )
    echo(f"Starting Doccano (data in {server.home}, logs in {server.home}/*.log) ...")
    with server:
        for note in server.notes:
            echo(f"Note: {note}")
        echo(f"Doccano is ready in {server.startup_seconds:.1f} s at {server.url}")
        echo(f"Admin user: {server.admin_username} (password in {server.home / PASSWORD_FILE}, readable by you only)")
        echo("Press Ctrl-C to stop.")
        _wait_for_stop_signal(server)
        echo("Stopping Doccano ...")


def _wait_for_stop_signal(server: DoccanoServer) -> None:
    """Block until SIGINT/SIGTERM/SIGHUP, watching that both server processes stay alive."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # SIGHUP too: a closed terminal must stop the server, not leave it running.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while not stop.wait(1.0):
            server.check_alive()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
