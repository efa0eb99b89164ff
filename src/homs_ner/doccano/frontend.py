"""Make Doccano 1.8.4's annotation page right-to-left by default: a patch of its served frontend.

Why a patch: Doccano 1.8.4 has no setting for text direction. The annotation editor's
direction comes from the Vuex store module ``config`` (state ``{rtl: false}``), toggled
only by the "LTR" switch in the user menu, and the store is rebuilt on every page load,
so the switch resets on each reload. In left-to-right mode the editor maps mouse
selections on Arabic text with numbers wrongly (selecting «650 يوماً» stored «حصار أكثر
من 650»), which silently corrupts gold data; in right-to-left mode selections are stored
exactly. This project's Doccano only ever holds Arabic, so the initial state becomes
``{rtl: true}``. The switch still works for the rest of a session.

What is changed: one expression, ``rtl:!1`` -> ``rtl:!0``, in the compiled chunk that
defines the store module, in the two copies Doccano ships: ``backend/client/dist/static``
(the build) and ``backend/staticfiles`` (what WhiteNoise serves), whose gzip twin is
rewritten too (WhiteNoise serves ``.gz`` to browsers that accept it). The patch is
idempotent: a patched file is recognised and left alone, and a file where neither the
original nor the patched expression is found is an error naming it (another Doccano
version needs a new look at this module, not a blind edit).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from homs_ner.data.io import atomic_write_bytes

# The store module `config` as the 1.8.4 build compiles it (frontend/store/config.js).
ORIGINAL = b"var r=function(){return{rtl:!1}},o={changeRTLState:function(e){e.rtl=!e.rtl}}"
PATCHED = b"var r=function(){return{rtl:!0}},o={changeRTLState:function(e){e.rtl=!e.rtl}}"
_CHUNK_DIRS = ("backend/client/dist/static/_nuxt", "backend/staticfiles/_nuxt")


class FrontendPatchError(RuntimeError):
    """The served frontend is not the one this patch was written for."""


@dataclass(frozen=True)
class PatchResult:
    patched: list[Path]  # files changed by this run
    already: list[Path]  # files that carried the patch before


def site_packages(venv: Path) -> Path:
    """The server venv's site-packages (the one holding Doccano's ``backend``)."""
    found = sorted(venv.glob("lib/python3*/site-packages/backend"))
    if not found:
        raise FrontendPatchError(f"no Doccano backend under {venv}/lib/python3*/site-packages; install Doccano first")
    return found[-1].parent


def _chunks(root: Path) -> list[Path]:
    """The compiled chunks that define the store module, in both served copies."""
    hits = []
    for folder in _CHUNK_DIRS:
        for path in sorted((root / folder).glob("*.js")):
            data = path.read_bytes()
            if ORIGINAL in data or PATCHED in data:
                hits.append(path)
    return hits


def patch_rtl_default(venv: Path) -> PatchResult:
    """Make the annotation editor start right-to-left; safe to run any number of times."""
    root = site_packages(Path(venv))
    chunks = _chunks(root)
    folders = {p.parent for p in chunks}
    missing = [f for f in _CHUNK_DIRS if root / f not in folders]
    if missing:
        raise FrontendPatchError(
            f"Doccano's store module `config` ({ORIGINAL[:40].decode()}...) was not found under "
            + ", ".join(str(root / f) for f in missing)
            + ": is this Doccano 1.8.4?"
        )
    patched, already = [], []
    for path in chunks:
        data = path.read_bytes()
        if ORIGINAL not in data:
            already.append(path)
            continue
        if data.count(ORIGINAL) != 1:
            raise FrontendPatchError(f"{path}: the store module occurs more than once; refusing to patch")
        new = data.replace(ORIGINAL, PATCHED)
        atomic_write_bytes(path, new)  # a half-written chunk would break the whole UI
        twin = path.with_name(path.name + ".gz")
        if twin.exists():
            atomic_write_bytes(twin, gzip.compress(new, mtime=0))
        patched.append(path)
    return PatchResult(patched, already)


def rtl_default_applied(venv: Path) -> bool:
    """True when every served copy starts right-to-left (gzip twins included)."""
    try:
        chunks = _chunks(site_packages(Path(venv)))
    except FrontendPatchError:
        return False
    if not chunks:
        return False
    for path in chunks:
        twin = path.with_name(path.name + ".gz")
        copies = [path.read_bytes()] + ([gzip.decompress(twin.read_bytes())] if twin.exists() else [])
        if any(PATCHED not in c for c in copies):
            return False
    return True

