"""Run a local Doccano 1.8.4 (web UI + REST API + Celery worker) on 127.0.0.1 only.

Why it looks the way it does:

* ``doccano webserver`` hard-codes ``0.0.0.0``; we run the same gunicorn app bound to
  loopback instead, plus ``doccano task`` (the Celery worker that exports need).
* Every setting is passed explicitly through the environment: without ``DATABASE_URL`` the
  database would land inside site-packages, and web and worker must share ``MEDIA_ROOT``.
  With ``CELERY_BROKER_URL`` unset the broker is the same SQLite file, so no Redis.
* ``/v1/health/`` answers 200 only when the database, storage, migrations *and* the worker
  are up, which makes it the one readiness signal we need.
"""


from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from homs_ner.data.io import atomic_write_bytes
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.frontend import rtl_default_applied
from homs_ner.doccano.processes import child_setup, kill_group, private_opener, runs_with_home, signal_group
from homs_ner.doccano.server_env import (
    LOG_TAIL_LINES,
    PASSWORD_ENV,
    PASSWORD_FILE,
    SERVER_REQUIREMENTS,
    DoccanoServerError,
    clean_env,
    ensure_port_free,
    free_port,
    server_venv_ready,
    stored_admin_password,
    tail,
    write_private,
)
from homs_ner.doccano.types import User

DEFAULT_ADMIN_USERNAME = "admin"
PID_FILE = "serve.pids"
# Host names the server answers to: those it is bound to (127.0.0.1) and their usual alias.
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
SETTINGS_MODULE = "homs_ner_doccano_settings"
_SETTINGS_SOURCE = """\
# Written by homs-ner: Doccano's production settings with ALLOWED_HOSTS limited to loopback.
import os

from config.settings.production import *  # noqa: F401,F403

ALLOWED_HOSTS = os.environ["HOMS_NER_ALLOWED_HOSTS"].split(",")
"""
DB_NAME = "db.sqlite3"
# Celery logs this once its consumer is connected to the broker and the queue declared.
_WORKER_READY = re.compile(rb"celery@\S+ ready\.")


class DoccanoServer:
    """A Doccano web server and Celery worker, each in its own process group.

    ``home`` keeps everything that must survive a restart: the SQLite database (which is
    also the Celery broker), uploaded and exported files under ``media/``, a secret key,
    the admin password and the logs ``web.log``, ``worker.log`` and ``setup.log``. It is
    private (0700, files 0600): the database holds the admin's API token. The database
    and the admin user are created only when ``home`` has no database yet, so a persistent
    home keeps projects and annotations.

    The admin password is ``admin_password`` if given, else ``$DOCCANO_ADMIN_PASSWORD``,
    else the one stored in ``home``, else a new random one; whichever it is gets stored in
    ``home/admin_password`` and, if it differs from the stored one, applied to the user.
    """

    def __init__(
        self,
        home: Path,
        *,
        venv: Path,
        port: int | None = None,
        admin_username: str = DEFAULT_ADMIN_USERNAME,
        admin_password: str | None = None,
        startup_timeout: float = 120.0,
        web_workers: int = 2,
        use_template_db: bool = True,
        stop_grace: float = 10.0,
    ) -> None:
        self.home = Path(home).resolve()
        self.venv = Path(venv).resolve()
        self.port = port or free_port()
        self.admin_username = admin_username
        self.admin_password = admin_password or os.environ.get(PASSWORD_ENV) or stored_admin_password(self.home) or ""
        self.notes: list[str] = []
        self.startup_timeout = startup_timeout
        self.web_workers = web_workers
        self.use_template_db = use_template_db
        self.stop_grace = stop_grace
        self.startup_seconds: float | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Base URL of the web UI and the REST API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.home / DB_NAME

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> DoccanoServer:
        """Initialise ``home`` if needed, spawn web + worker and wait until healthy."""
        began = time.perf_counter()
        if not server_venv_ready(self.venv):
            raise DoccanoServerError(
                f"no working Doccano server venv at {self.venv}; install it with "
                f"`python3.11 -m venv {self.venv} && {self.venv}/bin/pip install "
                + " ".join(f'"{r}"' for r in SERVER_REQUIREMENTS)
                + "` or homs_ner.doccano.server_env.install_server_venv()"
            )
        if not rtl_default_applied(self.venv):
            raise DoccanoServerError(
                f"Doccano at {self.venv} would open Arabic left-to-right (its frontend is not patched); "
                "run `homs-ner doccano install`"
            )
        self._stop_leftovers()
        ensure_port_free(self.port)
        self._make_private()
        if not self.admin_password:
            self.admin_password = secrets.token_urlsafe(18)
            self.notes.append(f"generated an admin password (set ${PASSWORD_ENV} to choose one)")
        if not self.db_path.exists():
            self._initialise_db()
        elif self.admin_password != stored_admin_password(self.home):
            self._set_admin_password()
            self.notes.append("applied the new admin password to the existing database")
        try:
            # Worker first: both processes get-or-create kombu's "celery" queue row in
            # the SQLite broker, and started together they race (UNIQUE constraint
            # failed: kombu_queue.name) and the worker dies. Seen on a loaded machine.
            deadline = time.monotonic() + self.startup_timeout
            worker_log = self._spawn("worker", [str(self.venv / "bin" / "doccano"), "task", "--concurrency", "1"])
            self._poll("Doccano worker", "ready", deadline, lambda _: _worker_ready(*worker_log), interval=0.2)
            self._spawn("web", self._gunicorn_argv())
            self._poll(f"Doccano at {self.url}", "healthy", deadline, self._health_status, interval=0.25)
        except BaseException:  # also Ctrl-C while waiting: leave no orphan server behind
            self.stop(grace=2.0)
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM both process groups, SIGKILL whatever is left after ``grace`` seconds.

        Celery's warm shutdown takes a few seconds; tests can pass a short ``stop_grace``.
        """
        grace = self.stop_grace if grace is None else grace
        for proc in self._procs.values():
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
        (self.home / PID_FILE).unlink(missing_ok=True)

    def check_alive(self) -> None:
        """Raise with the log tail if the web server or the worker has exited."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise DoccanoServerError(
                    f"Doccano {name} process exited with status {proc.returncode}\n{self.log_tail()}"
                )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of every log in ``home``, for error messages."""
        parts = []
        for name in ("setup", "web", "worker"):
            path = self.home / f"{name}.log"
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace")
                parts.append(f"--- {path} (last {lines} lines) ---\n{tail(text, lines)}")
        return "\n".join(parts) or f"(no logs in {self.home})"

    def __enter__(self) -> DoccanoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- users ----------------------------------------------------------------------

    def admin_client(self) -> DoccanoClient:
        """A REST client logged in as the admin user."""
        return DoccanoClient.login(self.url, self.admin_username, self.admin_password)

    def create_user(self, username: str, password: str) -> User:
        """Create a (non-admin) user, or return the existing one unchanged.

        Goes through ``POST /v1/users/create`` so the server applies Django's password
        validators. An existing user's password is *not* reset: the API has no endpoint
        for that, and ``doccano createuser`` would make the user a superuser.
        """
        with self.admin_client() as client:
            return client.find_user(username) or client.create_user(username, password)

    # -- internals ------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = clean_env()
        env.update(
            DOCCANO_HOME=str(self.home),
            DATABASE_URL=f"sqlite:///{self.db_path}",
            MEDIA_ROOT=str(self.home / "media"),
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            PYTHONPATH=str(self._settings_dir()),
            HOMS_NER_ALLOWED_HOSTS=",".join(ALLOWED_HOSTS),
            STANDALONE="True",  # what `doccano webserver` sets: serves /media and the favicon
            DEBUG="False",
            SECRET_KEY=self._secret_key(),
        )
        return env

    def _settings_dir(self) -> Path:
        """A folder in ``home`` holding the settings module (Doccano's with ALLOWED_HOSTS limited).

        Doccano 1.8.4 hard-codes ``ALLOWED_HOSTS = ["*"]``: any Host header is served, so a
        DNS-rebinding page in an annotator's browser could reach the API under its own name.
        """
        folder = self.home / "settings"
        folder.mkdir(mode=0o700, exist_ok=True)
        module = folder / f"{SETTINGS_MODULE}.py"
        if not module.exists() or module.read_text(encoding="utf-8") != _SETTINGS_SOURCE:
            write_private(module, _SETTINGS_SOURCE)
        return folder

    def _secret_key(self) -> str:
        """A per-home random key: Doccano's built-in default is public on GitHub."""
        path = self.home / "secret_key"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(50))
        return path.read_text(encoding="utf-8").strip()

    def _make_private(self) -> None:
        """Data folder 0700 and everything in it owner-only: the database holds the admin's API token.

        Also repairs a home made by an earlier version (database 0644); new files are
        private from the start (the children run with umask 077).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "media").mkdir(exist_ok=True)
        self.home.chmod(0o700)
        for path in self.home.iterdir():
            path.chmod(0o700 if path.is_dir() else 0o600)

    def _set_admin_password(self) -> None:
        """Create the admin user or set its password, and store the password (0600) in ``home``.

        Through Django itself with the password in the environment: on a command line
        (``doccano createuser --password``) any local user could read it with ``ps``.
        """
        backend = next(self.venv.glob("lib/python3*/site-packages/backend"))
        env = {**self._env(), "HOMS_NER_ADMIN": self.admin_username, "HOMS_NER_PASSWORD": self.admin_password}
        self._run_logged([str(self.venv / "bin" / "python"), str(backend / "manage.py"), "shell", "-c", _SET_PASSWORD], env, "set the admin password")
        write_private(self.home / PASSWORD_FILE, self.admin_password)

    def _initialise_db(self) -> None:
        """Migrate (or copy the cached migrated template) and create the admin user.

        On any failure, Ctrl-C included, the half-made database is removed: its mere
        existence is what tells the next start that initialisation is done.
        """
        template = self._template_path()
        try:
            if self.use_template_db and template.exists():
                shutil.copyfile(template, self.db_path)
            else:
                self._doccano("init")
                if self.use_template_db:  # atomic: parallel runs never see half a template
                    atomic_write_bytes(template, self.db_path.read_bytes())
            self.db_path.chmod(0o600)
            self._set_admin_password()
        except BaseException:
            self.db_path.unlink(missing_ok=True)
            raise

    def _template_path(self) -> Path:
        """Cache of a freshly migrated database, next to the venv it belongs to.

        ``doccano init`` takes 7-8 s; copying its result takes milliseconds. The name
        carries the installed version so an upgraded venv never reuses an old schema.
        """
        versions = sorted(p.name for p in self.venv.glob("lib/python3*/site-packages/doccano-*.dist-info"))
        tag = versions[-1].removesuffix(".dist-info") if versions else "doccano-unknown"
        return self.venv / ".homs-ner-cache" / f"{tag}-template.sqlite3"

    def _doccano(self, *args: str) -> None:
        self._run_logged([str(self.venv / "bin" / "doccano"), *args], self._env(), f"`doccano {args[0]}`")

    def _run_logged(self, argv: list[str], env: dict[str, str], what: str) -> None:
        with open(self.home / "setup.log", "ab", opener=private_opener) as log:
            done = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=False, preexec_fn=child_setup)
        if done.returncode != 0:
            raise DoccanoServerError(f"{what} failed (exit {done.returncode})\n{self.log_tail()}")

    def _gunicorn_argv(self) -> list[str]:
        backend = next(self.venv.glob("lib/python3*/site-packages/backend"))
        return [
            str(self.venv / "bin" / "gunicorn"),
            "--chdir", str(backend),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.web_workers),
            "--capture-output",
            "--log-level", "warning",
            "config.wsgi",
        ]  # fmt: skip

    def _spawn(self, name: str, argv: list[str]) -> tuple[Path, int]:
        """Start ``argv`` in a new session so that stop() can signal its whole tree.

        Returns the log file and the offset where this run's output begins (logs append
        across restarts of the same home).
        """
        path = self.home / f"{name}.log"
        with open(path, "ab", opener=private_opener) as log:
            log.write(f"=== homs-ner: starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            log.flush()
            offset = log.tell()
            self._procs[name] = subprocess.Popen(
                argv, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=child_setup,
            )
        write_private(self.home / PID_FILE, json.dumps({n: p.pid for n, p in self._procs.items()}))
        return path, offset

    def _stop_leftovers(self) -> None:
        """Stop a web server or worker that an earlier `serve` of this home left running.

        Its pid file names them; a pid counts only while it still runs with this home's
        ``DOCCANO_HOME`` (pids are reused). Says what it found in ``notes``.
        """
        path = self.home / PID_FILE
        if not path.exists():
            return
        try:
            pids = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pids = {}
        for name, pid in sorted(pids.items()):
            if runs_with_home(int(pid), self.home):
                kill_group(int(pid), self.stop_grace)
                self.notes.append(f"stopped the {name} (process group {pid}) that an earlier serve of {self.home} left running")
        path.unlink(missing_ok=True)

    def _poll(
        self, what: str, state: str, deadline: float, probe: Callable[[float], str | None], interval: float
    ) -> None:
        """Call ``probe(seconds left)`` until it returns None; it returns what it saw otherwise.

        Raises with the log tail when a process exits or ``deadline`` (one for the whole
        start: worker and web share ``startup_timeout``) passes.
        """
        last = "no answer yet"
        while (remaining := deadline - time.monotonic()) > 0:
            self.check_alive()
            seen = probe(remaining)
            if seen is None:
                return
            last = seen
            time.sleep(interval)
        raise DoccanoServerError(
            f"{what} not {state} after {self.startup_timeout:.0f} s (last: {last})\n{self.log_tail()}"
        )

    def _health_status(self, remaining: float) -> str | None:
        """None when /v1/health/ answers 200 (web up and the worker answering Celery pings)."""
        # The health check itself waits up to 3 s for a Celery ping.
        try:
            status = httpx.get(f"{self.url}/v1/health/", timeout=min(10.0, max(remaining, 0.5))).status_code
        except httpx.TransportError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if status == 200 else f"HTTP {status} (the worker is probably still starting)"

def _worker_ready(log: Path, offset: int) -> str | None:
    """None once Celery's ``celery@<host> ready.`` is in this run's part of the worker log."""
    with open(log, "rb") as f:
        f.seek(offset)
        return None if _WORKER_READY.search(f.read()) else "no 'ready' line in the worker log yet"



_SET_PASSWORD = (
    "import os; from django.contrib.auth import get_user_model; U = get_user_model(); "
    "name, password = os.environ['HOMS_NER_ADMIN'], os.environ['HOMS_NER_PASSWORD']; "
    "user = U.objects.filter(username=name).first() or U.objects.create_superuser(name, '', password); "
    "user.set_password(password); user.save()"
)
