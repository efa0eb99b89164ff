"""Shared fixtures. The Doccano ones start a real server lazily, only for tests that ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homs_ner.cli.defaults import default_venv
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.server import DoccanoServer
from homs_ner.doccano.server_env import SERVER_REQUIREMENTS, server_venv_ready


@pytest.fixture(scope="session")
def doccano_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoccanoServer]:
    """One real Doccano (web + worker) on a free loopback port for the whole session.

    Fails rather than skips without the server venv: CI installs it, and a silently
    skipped integration suite would hide regressions.
    """
    venv = default_venv()
    if not server_venv_ready(venv):
        pytest.fail(
            f"Doccano server venv missing or broken at {venv}. Install it with:\n"
            f"  python3.11 -m venv {venv} && {venv}/bin/pip install "
            + " ".join(f'"{r}"' for r in SERVER_REQUIREMENTS)
            + "\nor point DOCCANO_SERVER_VENV at an existing one.",
            pytrace=False,
        )
    with DoccanoServer(tmp_path_factory.mktemp("doccano"), venv=venv, web_workers=1, stop_grace=3.0) as server:
        yield server


@pytest.fixture
def doccano_admin(doccano_server: DoccanoServer) -> Iterator[DoccanoClient]:
    """A client logged in as the server's admin user."""
    with doccano_server.admin_client() as client:
        yield client


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tok2vec pipeline trained until it reproduces the tiny corpus (60 steps, ~10 s).

    A real trained pipeline of the project's config, small enough for unit tests of what
    is built on a model's output (pre-annotation, extraction, visualisation).
    """
    from spacy.tokens import DocBin
    from tiny_corpus import DATA, make_doc, train_config

    from homs_ner.data.tokenizer import blank_arabic

    nlp = blank_arabic()
    base = tmp_path_factory.mktemp("tiny_model")
    corpus = base / "tiny.spacy"
    DocBin(docs=[make_doc(nlp, *row) for row in DATA], store_user_data=True).to_disk(corpus)
    return train_config("tok2vec.cfg", base / "out", corpus, **{"training.max_steps": 60, "training.eval_frequency": 20})
