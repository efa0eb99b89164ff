"""`homs-ner`: the command line of every stage (typer + rich), one module per command group.

Each command is a thin shell over library functions, so `project.yml`, the tests and other
code call the same logic. Commands import spaCy, torch and the like only when they run.
"""

from __future__ import annotations

import os

from homs_ner.cli import annotation, corpus, doccano, outputs, training
from homs_ner.cli._util import app

__all__ = ["app", "main", "annotation", "corpus", "doccano", "outputs", "training"]


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()
