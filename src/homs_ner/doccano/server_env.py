"""The Doccano server's own environment: its venv, its process environment and its port.

Doccano pins pandas<2, SQLAlchemy<2 and Django<5, so it cannot share the project's
environment: it lives in its own venv (the command line's default is
``$DOCCANO_SERVER_VENV`` or ``<repo>/.doccano/venv``) and `homs_ner.doccano.server` only
starts its executables. Python 3.12 cannot build that venv (no pandas 1.5 wheels), hence
``python3.11``; ``numpy<2`` and ``marshmallow<4`` are needed or pandas / every ``doccano``
command fails to import.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from homs_ner.doccano.frontend import FrontendPatchError, patch_rtl_default

SERVER_REQUIREMENTS = ("doccano==1.8.4", "numpy<2", "marshmallow<4")
# The one variable for the admin password: read by `serve` (first start, or a change) and by
# every client command. Without it, `serve` generates one on first start.
PASSWORD_ENV = "DOCCANO_ADMIN_PASSWORD"
# Where the admin password lives (mode 0600): only in the data folder, never printed.
PASSWORD_FILE = "admin_password"
LOG_TAIL_LINES = 40
# Imports that fail in a broken venv: pandas without numpy<2, environs without marshmallow<4.
_VENV_PROBE = "import backend, celery, django, environs, gunicorn, pandas"
# Variables of the calling environment that must not leak into the server's interpreter.
_FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CELERY_BROKER_URL")


class DoccanoServerError(RuntimeError):
    """The Doccano server could not be installed, started or kept running."""



def stored_admin_password(home: Path) -> str | None:
    """The admin password `serve` stored in the data folder, if any."""
    path = Path(home) / PASSWORD_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def default_admin_password(home: Path) -> str:
    """``$DOCCANO_ADMIN_PASSWORD``, else the one stored in ``home`` by `serve`."""
    password = os.environ.get(PASSWORD_ENV) or stored_admin_password(home)
    if not password:
        raise DoccanoServerError(
            f"no Doccano admin password: set ${PASSWORD_ENV}, or start `homs-ner doccano serve` once "
            f"(it stores a generated one in {Path(home) / PASSWORD_FILE})"
        )
    return password


def write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner only (0600 from the start, not chmod-ed afterwards)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_venv_ready(venv: Path) -> bool:
    """True if ``venv`` has the ``doccano`` command and its backend imports cleanly."""
    if not (venv / "bin" / "doccano").exists():
        return False
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _VENV_PROBE],
        capture_output=True,
        env=clean_env(),
        check=False,
    )
    return probe.returncode == 0


def install_server_venv(venv: Path, python: str = "python3.11", quiet: bool = True) -> None:
    """Create ``venv`` and install Doccano 1.8.4 into it (unless it already works), then make
    its annotation page right-to-left by default (idempotent; see `homs_ner.doccano.frontend`).

    Takes about a minute and 700 MB. Raises :class:`DoccanoServerError` with pip's output
    tail when something fails, so CI logs show the cause rather than a bare exit status.
    """
    venv = Path(venv)
    if not server_venv_ready(venv):
        _install_doccano(venv, python, quiet)
    try:
        patch_rtl_default(venv)
    except FrontendPatchError as exc:
        raise DoccanoServerError(str(exc)) from exc


def _install_doccano(venv: Path, python: str, quiet: bool) -> None:
    if not (venv / "bin" / "python").exists():
        _run_install_step([python, "-m", "venv", str(venv)], quiet, f"creating the venv with {python}")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", *(["-q"] if quiet else [])]
    _run_install_step([*pip, *SERVER_REQUIREMENTS], quiet, "installing " + " ".join(SERVER_REQUIREMENTS))
    if not server_venv_ready(venv):
        raise DoccanoServerError(
            f"Doccano was installed into {venv} but does not import; "
            f"check that {python} is Python 3.8-3.11 and try removing {venv}"
        )


def _run_install_step(argv: list[str], quiet: bool, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=quiet, text=True, env=clean_env(), check=False)
    except FileNotFoundError as exc:
        raise DoccanoServerError(f"{what}: {argv[0]} not found (Doccano 1.8.4 needs Python 3.8-3.11)") from exc
    if done.returncode != 0:
        output = tail((done.stdout or "") + (done.stderr or ""), LOG_TAIL_LINES)
        raise DoccanoServerError(f"{what} failed (exit {done.returncode}):\n{output}")


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in _FOREIGN_ENV:
        env.pop(name, None)
    return env


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def ensure_port_free(port: int) -> None:
    """Fail fast: gunicorn would otherwise retry the bind for several seconds, then exit.

    SO_REUSEADDR as gunicorn sets it, so that connections of a just-stopped server lingering
    in TIME_WAIT do not count as "in use", while a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DoccanoServerError(
                f"port {port} on 127.0.0.1 is already in use (another Doccano?); choose another port"
            ) from exc
