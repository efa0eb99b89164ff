"""What the Doccano 1.8.4 REST API answers (as its serializers define it) and the errors
its client raises."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# -- errors ---------------------------------------------------------------------------


class DoccanoError(Exception):
    """A Doccano request failed; ``status`` is None when no HTTP answer came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.detail = detail


class DoccanoConnectionError(DoccanoError):
    """No connection to the server (refused, reset, DNS): usually it is not running."""


class DoccanoAuthError(DoccanoError):
    """Wrong credentials (400 on login), not logged in (401) or not allowed (403)."""


class DoccanoNotFoundError(DoccanoError):
    """The project, example, user or other object does not exist (404)."""


class DoccanoTimeoutError(DoccanoError):
    """The server, or its Celery worker, did not answer in time."""


class ExportFormatError(ValueError):
    """An export zip is not what Doccano's JSONL export writes; the message says where."""


# -- what the server returns (as its serializers define it) ---------------------------


class User(TypedDict):
    id: int
    username: str
    is_superuser: bool
    is_staff: bool


class Role(TypedDict):
    id: int
    name: str


class Member(TypedDict):
    id: int
    user: int
    role: int
    username: str
    rolename: str


class Project(TypedDict):
    id: int
    name: str
    description: str
    guideline: str
    project_type: str
    resourcetype: str
    random_order: bool
    collaborative_annotation: bool
    author: str
    created_at: str
    updated_at: str
    tags: list[dict[str, Any]]
    allow_overlapping: NotRequired[bool]  # sequence-labeling projects only
    grapheme_mode: NotRequired[bool]
    use_relation: NotRequired[bool]


class LabelType(TypedDict):
    """A span type or relation type."""

    id: int
    text: str
    prefix_key: str | None
    suffix_key: str | None
    background_color: str
    text_color: str


class Example(TypedDict):
    id: int
    text: str
    meta: dict[str, Any]
    is_confirmed: bool  # for the requesting user, unless the project is collaborative
    annotation_approver: str | None
    comment_count: int
    filename: str
    upload_name: str
    score: float


class Span(TypedDict):
    id: int
    example: int
    user: int
    label: int  # span type id
    start_offset: int  # UTF-16 code units
    end_offset: int
    prob: float
    created_at: str
    updated_at: str


class Relation(TypedDict):
    id: int
    example: int
    user: int
    from_id: int  # span ids
    to_id: int
    type: int  # relation type id
    prob: float
    created_at: str
    updated_at: str


class Comment(TypedDict):
    id: int
    example: int
    user: int
    username: str
    text: str
    created_at: str


class TaskStatus(TypedDict):
    ready: bool
    result: Any
    error: dict[str, str] | None


# -- the client -------------------------------------------------------------------------
