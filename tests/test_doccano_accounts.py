"""`homs-ner doccano add-annotator` / `remove-annotator` against the real Doccano."""

import pytest
from typer.testing import CliRunner

from homs_ner.cli import app
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.types import DoccanoAuthError

pytestmark = pytest.mark.integration

SECRET = "Qusayr-Truce-2013!"


def run(server, *args, env=None, input=None):
    base = ["doccano", args[0], *args[1:], "--project", "accounts", "--url", server.url, "--password", server.admin_password]
    return CliRunner().invoke(app, base, env=env, input=input)


def test_add_and_remove_an_annotator(doccano_server, doccano_admin):
    pid = doccano_admin.create_project("accounts", "annotator accounts", "")["id"]
    added = run(doccano_server, "add-annotator", "rana", env={"DOCCANO_ANNOTATOR_PASSWORD": SECRET})
    assert added.exit_code == 0, added.output
    assert "account created" in added.output and SECRET not in added.output
    with DoccanoClient.login(doccano_server.url, "rana", SECRET) as rana:
        assert [p["id"] for p in rana.projects()] == [pid]
    members = {m["username"]: m["rolename"] for m in doccano_admin.members(pid)}
    assert members["rana"] == "annotator"

    again = run(doccano_server, "add-annotator", "rana", env={"DOCCANO_ANNOTATOR_PASSWORD": "another-Secret-9"})
    assert again.exit_code == 0 and "password unchanged" in again.output

    removed = run(doccano_server, "remove-annotator", "rana")
    assert removed.exit_code == 0, removed.output
    assert "rana" not in {m["username"] for m in doccano_admin.members(pid)}
    missing = run(doccano_server, "remove-annotator", "rana")
    assert missing.exit_code == 1 and "not a member" in missing.output


def test_password_prompt_is_hidden_and_confirmed(doccano_server, doccano_admin):
    if doccano_admin.find_project("accounts") is None:
        doccano_admin.create_project("accounts", "annotator accounts", "")
    result = run(doccano_server, "add-annotator", "omar", env={"DOCCANO_ANNOTATOR_PASSWORD": ""}, input=f"{SECRET}\n{SECRET}\n")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    DoccanoClient.login(doccano_server.url, "omar", SECRET).close()


def test_a_weak_password_is_refused_by_the_server(doccano_server, doccano_admin):
    if doccano_admin.find_project("accounts") is None:
        doccano_admin.create_project("accounts", "annotator accounts", "")
    result = run(doccano_server, "add-annotator", "weak", env={"DOCCANO_ANNOTATOR_PASSWORD": "1234"})
    assert result.exit_code == 1 and "error" in result.output and "Traceback" not in result.output
    with pytest.raises(DoccanoAuthError):
        DoccanoClient.login(doccano_server.url, "weak", "1234")
