"""A small typed client of the Doccano 1.8.4 REST API, on httpx.

Why not ``doccano-client``: it pins pydantic<2 and urllib3<2, which drags spaCy back to an
old release. The API is small enough to call directly with token authentication.

Things the server does that callers must know:

* **Offsets are UTF-16 code units** (JavaScript string indices), in both directions. They
  equal Python ``str`` indices for Arabic (all in the BMP) but not for emoji and other
  astral characters. This module passes them through unchanged; converting is the
  caller's job.
* In a non-collaborative project every user sees only their *own* spans, relations and
  confirmation state: read annotations as the annotator, or use :meth:`DoccanoClient.export`.
* Confirming an example is a toggle on the server; :meth:`DoccanoClient.set_confirmed`
  reads the state first so callers can say what they want.
* Lists are paginated with a server default of 5 items; we ask for ``page_size`` items per
  page and follow ``next``.
* Exports run in the Celery worker and the server never times out waiting for it, so
  :meth:`DoccanoClient.export` polls with its own deadline.
"""


from __future__ import annotations

import io
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from homs_ner.data.io import JsonlError, atomic_write_bytes, export_members, iter_jsonl, jsonl_lines
from homs_ner.doccano.http import DoccanoSession
from homs_ner.doccano.types import (
    Comment,
    DoccanoError,
    DoccanoNotFoundError,
    DoccanoTimeoutError,
    Example,
    ExportFormatError,
    LabelType,
    Member,
    Project,
    Relation,
    Role,
    Span,
    TaskStatus,
    User,
)

EXPORT_FORMAT = "JSONL"  # the only export format that carries relations
SEQUENCE_LABELING = "SequenceLabeling"


class DoccanoClient(DoccanoSession):
    """The Doccano API calls this project makes, typed (the plumbing is `DoccanoSession`)."""

    # -- users and roles ------------------------------------------------------------

    def me(self) -> User:
        return cast(User, self._json("GET", "/v1/me"))

    def users(self) -> list[User]:
        return cast(list[User], list(self._iter("/v1/users")))

    def find_user(self, username: str) -> User | None:
        """The user with exactly this name (the server's ``q`` search is a substring match)."""
        return next((u for u in self._iter("/v1/users", {"q": username}) if u["username"] == username), None)

    def create_user(self, username: str, password: str) -> User:
        """Create a non-admin user; the server rejects weak passwords (Django validators)."""
        body = {"username": username, "password1": password, "password2": password}
        return cast(User, self._json("POST", "/v1/users/create", json=body))

    def roles(self) -> list[Role]:
        return cast(list[Role], list(self._iter("/v1/roles")))

    # -- projects -------------------------------------------------------------------

    def projects(self) -> list[Project]:
        """Projects the logged-in user is a member of, newest first."""
        return cast(list[Project], list(self._iter("/v1/projects")))

    def find_project(self, name: str) -> Project | None:
        """The newest project named exactly ``name`` (names are not unique in Doccano)."""
        found = (p for p in self._iter("/v1/projects", {"q": name}) if p["name"] == name)
        return cast(Project | None, next(found, None))

    def create_project(
        self,
        name: str,
        description: str,
        guideline: str,
        *,
        allow_overlapping: bool = True,
        use_relation: bool = True,
        collaborative: bool = False,
        grapheme_mode: bool = False,
    ) -> Project:
        """Create a sequence-labeling project.

        Keep ``grapheme_mode`` off: with it the UI counts graphemes, and Arabic with shadda
        or tanween would then disagree with code-unit offsets.
        """
        body = {
            "resourcetype": "SequenceLabelingProject",
            "project_type": SEQUENCE_LABELING,
            "name": name,
            "description": description,
            "guideline": guideline,
            "allow_overlapping": allow_overlapping,
            "use_relation": use_relation,
            "collaborative_annotation": collaborative,
            "grapheme_mode": grapheme_mode,
        }
        return cast(Project, self._json("POST", "/v1/projects", json=body))

    def update_project(self, pid: int, **fields: Any) -> Project:
        """Change only the given fields (PATCH)."""
        return cast(Project, self._json("PATCH", f"/v1/projects/{pid}", json=fields))

    def delete_project(self, pid: int) -> None:
        self._json("DELETE", f"/v1/projects/{pid}")

    def members(self, pid: int) -> list[Member]:
        return cast(list[Member], list(self._iter(f"/v1/projects/{pid}/members")))

    def add_member(self, pid: int, username: str, role: str = "annotator") -> Member:
        """Make ``username`` a member with ``role``; a no-op if it already is.

        A member with another role gets the new one (the server refuses to demote the
        project's last admin).
        """
        user = self.find_user(username)
        if user is None:
            raise DoccanoNotFoundError(f"no Doccano user named {username!r}", detail=username)
        body = {"user": user["id"], "role": self._role_id(role)}
        for member in self.members(pid):
            if member["user"] == user["id"]:
                if member["rolename"] == role:
                    return member
                return cast(Member, self._json("PUT", f"/v1/projects/{pid}/members/{member['id']}", json=body))
        return cast(Member, self._json("POST", f"/v1/projects/{pid}/members", json=body))

    def remove_member(self, pid: int, username: str) -> bool:
        """Take ``username`` out of the project; False if it was not a member.

        The server never removes the requesting user (it skips them silently), so removing
        oneself is refused here with an error instead.
        """
        if self.me()["username"] == username:
            raise DoccanoError(f"refusing to remove the logged-in user {username!r} from project {pid}")
        found = [m for m in self.members(pid) if m["username"] == username]
        if found:
            self._json("DELETE", f"/v1/projects/{pid}/members", json={"ids": [m["id"] for m in found]})
        return bool(found)

    def _role_id(self, name: str) -> int:
        roles = self.roles()
        for role in roles:
            if role["name"] == name:
                return role["id"]
        known = ", ".join(r["name"] for r in roles)
        raise DoccanoError(f"unknown Doccano role {name!r} (the server has: {known})", detail=name)

    # -- label types ----------------------------------------------------------------

    def span_types(self, pid: int) -> list[LabelType]:
        return self._label_types(pid, "span-types")

    def create_span_type(
        self,
        pid: int,
        text: str,
        background_color: str,
        suffix_key: str | None = None,
        prefix_key: str | None = None,
        text_color: str = "#ffffff",
    ) -> LabelType:
        """``suffix_key`` is one character [0-9a-z]; ``prefix_key`` is ctrl, shift or "ctrl shift"."""
        return self._create_label_type(pid, "span-types", text, background_color, suffix_key, prefix_key, text_color)

    def update_span_type(self, pid: int, type_id: int, **fields: Any) -> LabelType:
        return self._update_label_type(pid, "span-types", type_id, fields)

    def relation_types(self, pid: int) -> list[LabelType]:
        return self._label_types(pid, "relation-types")

    def create_relation_type(
        self,
        pid: int,
        text: str,
        background_color: str,
        suffix_key: str | None = None,
        prefix_key: str | None = None,
        text_color: str = "#ffffff",
    ) -> LabelType:
        return self._create_label_type(pid, "relation-types", text, background_color, suffix_key, prefix_key, text_color)

    def update_relation_type(self, pid: int, type_id: int, **fields: Any) -> LabelType:
        return self._update_label_type(pid, "relation-types", type_id, fields)

    def _label_types(self, pid: int, kind: str) -> list[LabelType]:
        return cast(list[LabelType], list(self._iter(f"/v1/projects/{pid}/{kind}")))

    def _create_label_type(
        self,
        pid: int,
        kind: str,
        text: str,
        color: str,
        suffix_key: str | None,
        prefix_key: str | None,
        text_color: str,
    ) -> LabelType:
        body = {
            "text": text,
            "background_color": color,
            "text_color": text_color,
            "suffix_key": suffix_key,
            "prefix_key": prefix_key,
        }
        return cast(LabelType, self._json("POST", f"/v1/projects/{pid}/{kind}", json=body))

    def _update_label_type(self, pid: int, kind: str, type_id: int, fields: dict[str, Any]) -> LabelType:
        return cast(LabelType, self._json("PATCH", f"/v1/projects/{pid}/{kind}/{type_id}", json=fields))

    # -- examples and annotations ---------------------------------------------------

    def examples(self, pid: int) -> Iterator[Example]:
        """All examples of the project in creation order, fetched page by page."""
        return cast(Iterator[Example], self._iter(f"/v1/projects/{pid}/examples"))

    def example(self, pid: int, eid: int) -> Example:
        return cast(Example, self._json("GET", f"/v1/projects/{pid}/examples/{eid}"))

    def create_example(self, pid: int, text: str, meta: dict[str, Any] | None = None) -> Example:
        """Add one example. Avoid a meta key ``id``: the JSONL export flattens meta and it
        would overwrite the example id."""
        body = {"text": text, "meta": meta or {}}
        return cast(Example, self._json("POST", f"/v1/projects/{pid}/examples", json=body))

    def update_example(self, pid: int, eid: int, **fields: Any) -> Example:
        """Change only the given fields (PATCH), e.g. ``meta``; never the text of annotated work."""
        return cast(Example, self._json("PATCH", f"/v1/projects/{pid}/examples/{eid}", json=fields))

    def delete_example(self, pid: int, eid: int) -> None:
        """Delete one example (and every user's annotations on it)."""
        self._request("DELETE", f"/v1/projects/{pid}/examples/{eid}")

    def spans(self, pid: int, eid: int) -> list[Span]:
        return cast(list[Span], list(self._iter(f"/v1/projects/{pid}/examples/{eid}/spans")))

    def create_span(
        self, pid: int, eid: int, start_offset: int, end_offset: int, label_id: int, prob: float = 0.0
    ) -> Span:
        """Offsets in UTF-16 code units. The server does not check them against the text
        length, nor that the label belongs to this project: validate before calling.
        ``prob`` is a model's confidence; spans drawn in the UI have 0.0."""
        body = {"start_offset": start_offset, "end_offset": end_offset, "label": label_id, "prob": prob}
        return cast(Span, self._json("POST", f"/v1/projects/{pid}/examples/{eid}/spans", json=body))

    def delete_span(self, pid: int, eid: int, span_id: int) -> None:
        self._json("DELETE", f"/v1/projects/{pid}/examples/{eid}/spans/{span_id}")

    def relations(self, pid: int, eid: int) -> list[Relation]:
        return cast(list[Relation], list(self._iter(f"/v1/projects/{pid}/examples/{eid}/relations")))

    def create_relation(
        self, pid: int, eid: int, from_id: int, to_id: int, type_id: int, prob: float = 0.0
    ) -> Relation:
        """Link two spans of the same example (the server accepts ``from_id == to_id``)."""
        body = {"from_id": from_id, "to_id": to_id, "type": type_id, "prob": prob}
        return cast(Relation, self._json("POST", f"/v1/projects/{pid}/examples/{eid}/relations", json=body))

    def comments(self, pid: int, eid: int | None = None, *, search: str | None = None) -> list[Comment]:
        """Comments on one example, or on the whole project (every user's) when ``eid`` is None,
        page by page. ``search`` keeps those whose text contains each of its words (any case)."""
        params = {k: v for k, v in (("example", eid), ("search", search)) if v is not None}
        return cast(list[Comment], list(self._iter(f"/v1/projects/{pid}/comments", params)))

    def create_comment(self, pid: int, eid: int, text: str) -> Comment:
        """A note on an example, shown to annotators beside it in the UI and kept in exports."""
        return cast(Comment, self._json("POST", f"/v1/projects/{pid}/comments", params={"example": eid}, json={"text": text}))

    def set_confirmed(self, pid: int, eid: int, confirmed: bool) -> None:
        """Mark the example as done (or not) for the logged-in user.

        The server's states endpoint toggles, so we read the state first; two clients
        toggling the same example at the same moment can still race.
        """
        if self.example(pid, eid)["is_confirmed"] != confirmed:
            self._json("POST", f"/v1/projects/{pid}/examples/{eid}/states", json={})

    # -- export ---------------------------------------------------------------------

    def export(
        self,
        pid: int,
        dest_dir: Path,
        *,
        only_approved: bool = False,
        timeout: float = 120.0,
        poll_interval: float = 0.5,
    ) -> Path:
        """Export the project as JSONL and save the zip in ``dest_dir``; return its path.

        ``only_approved`` keeps only examples each user confirmed. The file is named
        ``doccano-project-<pid>[-approved].zip`` and replaced atomically, so a reader never
        sees half a zip. Needs the Celery worker: raises :class:`DoccanoTimeoutError` if
        the export has not finished within ``timeout`` seconds.
        """
        content = self.export_bytes(pid, only_approved=only_approved, timeout=timeout, poll_interval=poll_interval)
        suffix = "-approved" if only_approved else ""
        dest = Path(dest_dir) / f"doccano-project-{pid}{suffix}.zip"
        atomic_write_bytes(dest, content)
        return dest

    def export_bytes(
        self, pid: int, *, only_approved: bool = False, timeout: float = 120.0, poll_interval: float = 0.5
    ) -> bytes:
        """The JSONL export zip of the project, in memory (see :meth:`export`).

        The one read that returns every example's spans and relations at once: a project
        admin's, in a few requests whatever the project's size."""
        path = f"/v1/projects/{pid}/download"
        body = {"format": EXPORT_FORMAT, "exportApproved": only_approved}
        task_id = self._json("POST", path, json=body)["task_id"]
        self._wait_for_task(task_id, f"export of project {pid}", timeout, poll_interval)
        content = self._request("GET", path, params={"taskId": task_id}).content
        if not zipfile.is_zipfile(io.BytesIO(content)):
            raise DoccanoError(
                f"export of project {pid} returned no zip: {content[:200]!r}", method="GET", url=self._url(path)
            )
        return content

    def task_status(self, task_id: str) -> TaskStatus:
        return cast(TaskStatus, self._json("GET", f"/v1/tasks/status/{task_id}"))

    def _wait_for_task(self, task_id: str, what: str, timeout: float, poll_interval: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            status = self.task_status(task_id)
            if status["ready"]:
                if status["error"]:
                    raise DoccanoError(f"{what} failed on the server: {status['error'].get('text')}")
                return status["result"]
            if time.monotonic() >= deadline:
                raise DoccanoTimeoutError(
                    f"{what} did not finish within {timeout:.0f} s (task {task_id}): is the Doccano "
                    "worker (`doccano task`) running? `homs-ner doccano serve` starts it; see worker.log",
                    url=self._url(f"/v1/tasks/status/{task_id}"),
                    detail=task_id,
                )
            time.sleep(poll_interval)


# -- reading an export ----------------------------------------------------------------


def read_export_zip(path: Path | IO[bytes], where: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Records of a JSONL export zip (a file, or its bytes in a buffer), by user:
    ``<username>.jsonl`` -> ``username``; ``where`` names a buffer in errors.

    A collaborative project exports a single ``all.jsonl`` (key ``"all"``). Each record is
    ``{"id", "text", "entities", "relations", "Comments", <meta keys flattened>}`` with
    offsets in UTF-16 code units. A user with nothing to export gets ``[]``.
    """
    where = where or str(path)
    try:
        members = export_members(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ExportFormatError(f"{where}: not a readable zip ({exc})") from exc
    if not members:
        raise ExportFormatError(f"{where}: no .jsonl member (was it exported as JSONL?)")
    return {Path(name).stem: _parse_jsonl(data, f"{where}:{name}") for name, data in members.items()}


def _parse_jsonl(data: bytes, where: str) -> list[dict[str, Any]]:
    try:
        lines = (line for _, line in jsonl_lines(data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{where}: not UTF-8 ({exc})") from exc
    try:
        return [record for _, record in iter_jsonl(lines, where)]  # an empty export holds only a newline
    except JsonlError as err:
        raise ExportFormatError(f"{err.where} line {err.lineno}: {err.reason}") from err
