"""Issue 12's Doccano probes against real servers: a server killed mid-push and mid-pull,
`serve` killed or hung up, concurrent pushes, the guideline path, and the secrets.

Each test that kills a server starts its own (the session one stays up for the others).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from homs_ner.cli import app
from homs_ner.cli.defaults import default_venv
from homs_ner.data.corpus import Article, paragraphs
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.server import PID_FILE, DoccanoServer
from homs_ner.doccano.server_env import PASSWORD_ENV, PASSWORD_FILE, free_port
from homs_ner.doccano.sync import push, pull
from homs_ner.doccano.types import DoccanoAuthError, DoccanoError
from doubles import load_schema

pytestmark = pytest.mark.integration

SCHEMA = load_schema()
LINES = [f"قالت مصادر إن الدفعة رقم {i} من المسلحين خرجت من حي الوعر باتجاه ريف حمص الشمالي." for i in range(12)]
ARTICLE = Article("fault_art", "t", "o", "2017", "seed", "train", "\n".join(LINES) + "\n")
PARAS = paragraphs(ARTICLE)
GUIDE = "# Guidelines\nقواعد"


def paragraph_counts(client: DoccanoClient, project: str) -> dict[str, int]:
    pid = client.find_project(project)["id"]
    counts: dict[str, int] = {}
    for example in client.examples(pid):
        key = example["meta"]["paragraph_id"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def kill_group(server: DoccanoServer, name: str) -> None:
    os.killpg(server._procs[name].pid, signal.SIGKILL)
    server._procs[name].wait()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.2)


def test_server_killed_mid_push_and_mid_pull(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    server = DoccanoServer(home, venv=default_venv(), port=port, web_workers=1, stop_grace=3.0).start()
    try:
        with server.admin_client() as client:

            def die_after_four(done: int, total: int) -> None:
                if done == 4:
                    server.stop(grace=0.0)

            with pytest.raises(DoccanoError, match="cannot reach Doccano"):
                push(client, "faults", SCHEMA, GUIDE, PARAS, die_after_four)
        server.start()
        with server.admin_client() as client:
            report = push(client, "faults", SCHEMA, GUIDE, PARAS)
            assert (report.examples_existing, report.examples_created, report.duplicates_removed) == (4, len(PARAS) - 4, 0)
            assert paragraph_counts(client, "faults") == {p.id: 1 for p in PARAS}

            written = pull(client, "faults", tmp_path / "raw")
            before = {name: path.read_bytes() for name, path in written.items()}
            kill_group(server, "worker")  # the export is accepted but never done: pull is waiting...
            threading.Timer(1.5, lambda: kill_group(server, "web")).start()  # ... when the server dies
            with pytest.raises(DoccanoError, match="cannot reach Doccano"):
                pull(client, "faults", tmp_path / "raw", timeout=60)
        assert {name: path.read_bytes() for name, path in written.items()} == before  # nothing half-written
        server.stop(grace=0.0)
        server.start()
        with server.admin_client() as client:
            assert set(pull(client, "faults", tmp_path / "raw")) == set(before)
    finally:
        server.stop(grace=2.0)


def start_serve(home: Path, port: int, **env: str) -> tuple[subprocess.Popen[str], str]:
    """`homs-ner doccano serve` in a child, once healthy and done printing; (process, what it printed)."""
    argv = [str(Path(sys.executable).parent / "homs-ner"), "doccano", "serve", "--home", str(home), "--port", str(port)]
    environ = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV} | env
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)

    def healthy() -> bool:
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/v1/health/", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 180, "Doccano healthy")
    seen = []
    while not seen or "Press Ctrl-C" not in seen[-1]:  # serve has said all it says at start
        seen.append(proc.stdout.readline())
    return proc, "".join(seen)


def test_serve_killed_or_hung_up_leaves_no_orphans(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    proc, said = start_serve(home, port)
    groups = json.loads((home / PID_FILE).read_text())
    proc.kill()  # SIGKILL: serve cannot clean up, the kernel's parent-death signal must
    proc.wait()
    wait_until(lambda: not any(group_alive(g) for g in groups.values()), 30, "web server and worker gone")
    output = said + proc.stdout.read()
    assert "generated an admin password" in output
    assert (home / PASSWORD_FILE).read_text().strip() not in output  # never printed

    proc, _ = start_serve(home, port)  # the port is free again
    groups = json.loads((home / PID_FILE).read_text())
    proc.send_signal(signal.SIGHUP)  # a closed terminal
    assert proc.wait(timeout=60) == 0
    assert not any(group_alive(g) for g in groups.values())
    assert not (home / PID_FILE).exists()


def test_a_leftover_of_an_earlier_serve_is_stopped_and_reported(tmp_path: Path) -> None:
    """What the pid file is for: processes of this home that outlived their serve."""
    home = tmp_path / "home"
    home.mkdir()
    ours = subprocess.Popen(["sleep", "60"], start_new_session=True, env={"DOCCANO_HOME": str(home.resolve())})
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True, env={"DOCCANO_HOME": "/elsewhere"})
    try:
        (home / PID_FILE).write_text(json.dumps({"web": ours.pid, "worker": stranger.pid}))
        server = DoccanoServer(home, venv=default_venv(), stop_grace=2.0)
        server._stop_leftovers()
        assert ours.wait(timeout=5) is not None and stranger.poll() is None  # a reused pid is left alone
        assert server.notes == [f"stopped the web (process group {ours.pid}) that an earlier serve of {home.resolve()} left running"]
        assert not (home / PID_FILE).exists()
    finally:
        for proc in (ours, stranger):
            proc.kill()
            proc.wait()


def test_secrets_private_password_generated_then_changed_hosts_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    home = tmp_path / "home"
    with DoccanoServer(home, venv=default_venv(), web_workers=1, stop_grace=3.0) as server:
        first = server.admin_password
        assert len(first) >= 20 and (home / PASSWORD_FILE).read_text() == first
        assert oct(home.stat().st_mode & 0o777) == "0o700"
        loose = {p.name: oct(p.stat().st_mode & 0o777) for p in home.iterdir() if p.is_file() and p.stat().st_mode & 0o077}
        assert loose == {}, loose  # database (the admin's API token), password, secret key, logs
        assert httpx.get(f"{server.url}/v1/health/", headers={"Host": "rebound.example"}).status_code == 400
        assert httpx.get(f"{server.url}/v1/health/", headers={"Host": "localhost"}).status_code == 200
    monkeypatch.setenv(PASSWORD_ENV, "Changed-Homs-2017")
    with DoccanoServer(home, venv=default_venv(), web_workers=1, stop_grace=3.0) as server:
        assert server.notes == ["applied the new admin password to the existing database"]
        assert (home / PASSWORD_FILE).read_text() == "Changed-Homs-2017"
        DoccanoClient.login(server.url, "admin", "Changed-Homs-2017").close()
        with pytest.raises(DoccanoAuthError):
            DoccanoClient.login(server.url, "admin", first)


def test_concurrent_pushes_do_not_duplicate_and_a_push_repairs_duplicates(doccano_server: DoccanoServer) -> None:
    clients = [doccano_server.admin_client() for _ in range(2)]
    errors: list[BaseException] = []

    def run(client: DoccanoClient) -> None:
        try:
            push(client, "concurrent", SCHEMA, GUIDE, PARAS)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    admin = clients[0]
    assert paragraph_counts(admin, "concurrent") == {p.id: 1 for p in PARAS}
    pid = admin.find_project("concurrent")["id"]
    admin.create_example(pid, PARAS[3].text, PARAS[3].meta)  # a duplicate made past the lock
    assert push(admin, "concurrent", SCHEMA, GUIDE, PARAS).duplicates_removed == 1
    assert paragraph_counts(admin, "concurrent") == {p.id: 1 for p in PARAS}
    for c in clients:
        c.close()


@pytest.mark.parametrize("guideline", ["missing", "empty"])
def test_push_needs_an_existing_guideline(
    guideline: str, doccano_server: DoccanoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository
    runner = CliRunner()
    base = ["doccano", "push", "--project", "guided", "--url", doccano_server.url, "--password", doccano_server.admin_password,
            "--article", "000_15c30e188eba9c5a"]
    assert runner.invoke(app, base).exit_code == 0  # the repository's guideline, wherever the command runs
    with doccano_server.admin_client() as admin:
        kept = admin.find_project("guided")["guideline"]
        assert len(kept) > 1000
        path = tmp_path / "GUIDELINES.md"
        if guideline == "empty":
            path.write_text("  \n", encoding="utf-8")
        result = runner.invoke(app, [*base, "--guidelines", str(path)])
        assert result.exit_code == 1 and str(path) in " ".join(result.output.split()), result.output
        assert admin.find_project("guided")["guideline"] == kept
