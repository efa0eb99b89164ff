"""Annotator accounts: the documented way to let a person annotate, and to stop it.

Why a command: Doccano creates accounts only in its admin pages, and in this project they
otherwise appeared only as a side effect of `annotate --as` or `preannotate`. The password
comes from the environment or a hidden prompt and is handed straight to the server, which
checks it with Django's validators; it is never printed, logged or written to a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.types import DoccanoError

ANNOTATOR_ROLE = "annotator"


@dataclass(frozen=True)
class AnnotatorReport:
    project_id: int
    account_created: bool  # False: the account existed (its password was left unchanged)


def _project_id(client: DoccanoClient, project: str) -> int:
    found = client.find_project(project)
    if found is None:
        raise DoccanoError(f"no Doccano project named {project!r}; push it first with `homs-ner doccano push`")
    return found["id"]


def add_annotator(client: DoccanoClient, project: str, username: str, password: str) -> AnnotatorReport:
    """Create the account if missing and make it an annotator of `project` (idempotent)."""
    pid = _project_id(client, project)
    created = client.find_user(username) is None
    if created:
        client.create_user(username, password)
    client.add_member(pid, username, role=ANNOTATOR_ROLE)
    return AnnotatorReport(pid, created)


def remove_annotator(client: DoccanoClient, project: str, username: str) -> bool:
    """Take the account out of `project`; False if it was not a member.

    The account and its annotations stay in Doccano's database (the REST API cannot
    delete users), but an export lists members only: pull before removing someone.
    """
    return client.remove_member(_project_id(client, project), username)
