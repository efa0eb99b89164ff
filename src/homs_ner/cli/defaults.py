"""The repository's layout: the one place that knows where things live in this checkout.

Library functions take every path as an argument; the command line (and the tests, which
drive the library as the command line does) take the defaults from here. Paths are
relative to the repository root, found from this file: an editable install runs from it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIGS = REPO_ROOT / "configs"
SCHEMA_PATH = CONFIGS / "labels.yml"
"""The label schema: the single source of truth for every stage."""
BACKBONE_CONFIG = CONFIGS / "backbone.cfg"
"""The shared transformer's spaCy config (`spacy assemble` and the layer probe)."""
CORPUS_DIR = REPO_ROOT / "corpus"
ARTICLES_DIR = CORPUS_DIR / "articles"
DOCCANO_HOME = Path(".doccano/data")
"""The local Doccano's data folder (database, media, logs), relative to where it runs."""


def default_venv() -> Path:
    """The Doccano server venv: ``$DOCCANO_SERVER_VENV`` or ``<repo>/.doccano/venv``."""
    return Path(os.environ.get("DOCCANO_SERVER_VENV") or REPO_ROOT / ".doccano" / "venv")
