"""Error handling of the Doccano client against a fake server (httpx.MockTransport)."""

from __future__ import annotations

import json
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from homs_ner.doccano.client import DoccanoClient, read_export_zip
from homs_ner.doccano.types import (
    DoccanoAuthError,
    DoccanoConnectionError,
    DoccanoError,
    DoccanoNotFoundError,
    DoccanoTimeoutError,
    ExportFormatError,
)

BASE = "http://doccano.test"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **kwargs: object) -> DoccanoClient:
    return DoccanoClient(BASE, token="t0k", backoff=0.0, transport=httpx.MockTransport(handler), **kwargs)


class Recorder:
    """A fake server answering from a list of responses, recording what it was asked."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)


def test_login_sends_credentials_and_uses_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/login/":
            assert json.loads(request.content) == {"username": "ann", "password": "pw"}
            return httpx.Response(200, json={"key": "abc123"})
        assert request.headers["Authorization"] == "Token abc123"
        return httpx.Response(200, json={"id": 2, "username": "ann", "is_superuser": False, "is_staff": False})

    client = DoccanoClient.login(BASE, "ann", "pw", transport=httpx.MockTransport(handler))
    assert client.me()["username"] == "ann"


def test_bad_credentials_raise_auth_error() -> None:
    body = {"non_field_errors": ["Unable to log in with provided credentials."]}
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json=body))
    with pytest.raises(DoccanoAuthError) as caught:
        DoccanoClient.login(BASE, "admin", "wrong", transport=transport)
    error = caught.value
    assert (error.status, error.method, error.url) == (400, "POST", f"{BASE}/v1/auth/login/")
    assert error.detail == body
    assert "Unable to log in" in str(error) and "wrong username/password" in str(error)


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorised_calls_raise_auth_error(status: int) -> None:
    detail = "Authentication credentials were not provided."
    client = client_for(lambda request: httpx.Response(status, json={"detail": detail}))
    with pytest.raises(DoccanoAuthError) as caught:
        client.projects()
    assert caught.value.status == status and caught.value.detail == detail


def test_a_400_outside_login_is_a_plain_error() -> None:
    client = client_for(lambda request: httpx.Response(400, json={"detail": ["overlapping span"]}))
    with pytest.raises(DoccanoError) as caught:
        client.create_span(1, 2, 0, 4, 7)
    assert type(caught.value) is DoccanoError and caught.value.status == 400


def test_404_raises_not_found_with_the_server_detail() -> None:
    client = client_for(lambda request: httpx.Response(404, json={"detail": "No Project matches the given query."}))
    with pytest.raises(DoccanoNotFoundError) as caught:
        client.span_types(999999)
    error = caught.value
    assert error.status == 404 and error.url == f"{BASE}/v1/projects/999999/span-types"
    assert "No Project matches the given query." in str(error)


def test_get_is_retried_on_503_then_succeeds() -> None:
    server = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[{"id": 1, "name": "x"}]))
    assert client_for(server).roles() == [{"id": 1, "name": "x"}]
    assert len(server.requests) == 3


def test_get_gives_up_after_the_retries() -> None:
    server = Recorder(*[httpx.Response(503, text="busy")] * 3)
    with pytest.raises(DoccanoError) as caught:
        client_for(server, retries=2).roles()
    assert caught.value.status == 503 and caught.value.detail == "busy"
    assert len(server.requests) == 3


def test_every_request_is_counted_by_method_retries_too() -> None:
    server = Recorder(httpx.Response(503), httpx.Response(200, json=[]), httpx.Response(201, json={"id": 1}))
    client = client_for(server)
    client.roles()
    client.create_example(1, "نص")
    assert client.requests.by_method() == {"GET": 2, "POST": 1} and client.requests.total == 3


def test_project_comments_are_read_page_by_page_with_a_search() -> None:
    server = Recorder(
        httpx.Response(200, json={"next": f"{BASE}/v1/projects/3/comments?limit=1&offset=1&search=mark", "results": [{"id": 1}]}),
        httpx.Response(200, json={"next": None, "results": [{"id": 2}]}),
    )
    assert [c["id"] for c in client_for(server, page_size=1).comments(3, search="mark")] == [1, 2]
    assert dict(server.requests[0].url.params) == {"limit": "1", "search": "mark"}


def test_post_is_never_retried() -> None:
    server = Recorder(httpx.Response(503), httpx.Response(201, json={"id": 1}))
    with pytest.raises(DoccanoError) as caught:
        client_for(server).create_example(1, "نص", {"doc_id": "d1"})
    assert caught.value.status == 503
    assert len(server.requests) == 1


def test_connection_errors_are_retried_for_get_only() -> None:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = client_for(refuse, retries=2)
    with pytest.raises(DoccanoConnectionError):
        client.projects()
    with pytest.raises(DoccanoConnectionError):
        client.create_project("p", "d", "g")
    assert calls == ["GET", "GET", "GET", "POST"]


def test_pagination_follows_next_and_asks_for_big_pages() -> None:
    pages = {
        "0": {"next": f"{BASE}/v1/projects/3/examples?limit=2&offset=2", "results": [{"id": 1}, {"id": 2}]},
        "2": {"next": None, "results": [{"id": 3}]},
    }
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=pages[request.url.params.get("offset", "0")])

    assert [e["id"] for e in client_for(handler, page_size=2).examples(3)] == [1, 2, 3]
    assert seen[0].params["limit"] == "2" and seen[1] == httpx.URL(pages["0"]["next"])


def test_connection_refused_tells_how_to_start_the_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = DoccanoClient(f"http://127.0.0.1:{port}", retries=0)
        with pytest.raises(DoccanoConnectionError) as caught:
            client.me()
    message = str(caught.value)
    assert "is the server running?" in message and "homs-ner doccano serve" in message
    assert caught.value.status is None


def test_read_timeout_raises_timeout_error() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(DoccanoTimeoutError):
        client_for(slow).me()


def test_export_times_out_when_the_worker_never_answers(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"task_id": "t-1"})
        assert request.url.path == "/v1/tasks/status/t-1"
        return httpx.Response(200, json={"ready": False, "result": None, "error": None})

    with pytest.raises(DoccanoTimeoutError) as caught:
        client_for(handler).export(5, tmp_path, timeout=0.2, poll_interval=0.05)
    assert "worker" in str(caught.value) and "t-1" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_export_reports_a_failed_task(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"task_id": "t-2"})
        return httpx.Response(200, json={"ready": True, "result": None, "error": {"text": "boom"}})

    with pytest.raises(DoccanoError, match="boom"):
        client_for(handler).export(5, tmp_path, timeout=1.0)


def test_export_downloads_the_zip(tmp_path: Path) -> None:
    zipped = tmp_path / "server.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("admin.jsonl", "\n")
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "POST":
            assert json.loads(request.content) == {"format": "JSONL", "exportApproved": True}
            return httpx.Response(200, json={"task_id": "t-3"})
        if request.url.path.startswith("/v1/tasks/status/"):
            return httpx.Response(200, json={"ready": True, "result": "/srv/x.zip", "error": None})
        assert request.url.params["taskId"] == "t-3"
        return httpx.Response(200, content=zipped.read_bytes())

    dest = client_for(handler).export(5, tmp_path / "out", only_approved=True, timeout=1.0)
    assert dest == tmp_path / "out" / "doccano-project-5-approved.zip"
    assert read_export_zip(dest) == {"admin": []}
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary file left


def test_set_confirmed_toggles_only_when_needed() -> None:
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request.url.path)
            return httpx.Response(201, json={"id": 1})
        return httpx.Response(200, json={"id": 9, "is_confirmed": True})

    client = client_for(handler)
    client.set_confirmed(1, 9, True)
    assert posts == []
    client.set_confirmed(1, 9, False)
    assert posts == ["/v1/projects/1/examples/9/states"]


def test_add_member_of_unknown_user_is_not_found() -> None:
    client = client_for(lambda request: httpx.Response(200, json=[{"id": 1, "username": "admin"}]))
    with pytest.raises(DoccanoNotFoundError, match="nobody"):
        client.add_member(1, "nobody")


# -- read_export_zip -------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def test_read_export_zip_by_user(tmp_path: Path) -> None:
    record = {"id": 1, "text": "حمص", "entities": [], "relations": [], "Comments": [], "doc_id": "d1"}
    path = make_zip(
        tmp_path / "e.zip",
        {"ann.jsonl": json.dumps(record, ensure_ascii=False) + "\n", "admin.jsonl": "\n"},
    )
    assert read_export_zip(path) == {"admin": [], "ann": [record]}


def test_read_export_zip_names_member_and_line_of_bad_json(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "e.zip", {"all.jsonl": '{"id": 1}\n{"id": \n'})
    with pytest.raises(ExportFormatError, match=r"all\.jsonl line 2"):
        read_export_zip(path)


def test_read_export_zip_rejects_non_objects(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "e.zip", {"all.jsonl": "[1, 2]\n"})
    with pytest.raises(ExportFormatError, match="line 1: expected a JSON object"):
        read_export_zip(path)


def test_read_export_zip_rejects_non_zip_and_zip_without_jsonl(tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_text('{"status": "Not ready"}')
    with pytest.raises(ExportFormatError, match="not a readable zip"):
        read_export_zip(not_zip)
    with pytest.raises(ExportFormatError, match="no .jsonl member"):
        read_export_zip(make_zip(tmp_path / "e.zip", {"admin.csv": "a,b\n"}))
