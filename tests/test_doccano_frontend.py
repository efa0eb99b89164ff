"""The right-to-left default patch of Doccano's served frontend, on a miniature of its layout.

The real served files are checked by the browser test (tests/test_doccano_browser.py):
there the page is right-to-left on first load and after a reload.
"""

import gzip
from pathlib import Path

import pytest

from homs_ner.doccano.frontend import (
    ORIGINAL,
    PATCHED,
    FrontendPatchError,
    patch_rtl_default,
    rtl_default_applied,
)

SITE = "lib/python3.11/site-packages/backend"
CHUNK = b"!function(){" + ORIGINAL + b",c={isRTL:function(e){return e.rtl}}}();"


def fake_venv(root: Path, with_gzip: bool = True) -> Path:
    for folder in ("client/dist/static/_nuxt", "staticfiles/_nuxt"):
        target = root / SITE / folder
        target.mkdir(parents=True)
        (target / "87c8b95.js").write_bytes(CHUNK)
        (target / "other.js").write_bytes(b"var rtl=!1;")
        if with_gzip and folder.startswith("staticfiles"):
            (target / "87c8b95.js.gz").write_bytes(gzip.compress(CHUNK))
    return root


def test_patch_makes_both_copies_and_the_gzip_twin_start_rtl(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path)
    assert not rtl_default_applied(venv)
    result = patch_rtl_default(venv)
    assert len(result.patched) == 2 and result.already == []
    served = venv / SITE / "staticfiles/_nuxt"
    assert PATCHED in (served / "87c8b95.js").read_bytes()
    assert gzip.decompress((served / "87c8b95.js.gz").read_bytes()) == (served / "87c8b95.js").read_bytes()
    assert (served / "other.js").read_bytes() == b"var rtl=!1;"
    assert rtl_default_applied(venv)


def test_patch_is_idempotent(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path)
    patch_rtl_default(venv)
    before = {p: p.read_bytes() for p in venv.rglob("*.js*")}
    again = patch_rtl_default(venv)
    assert again.patched == [] and len(again.already) == 2
    assert {p: p.read_bytes() for p in venv.rglob("*.js*")} == before


def test_a_stale_gzip_twin_is_not_counted_as_patched(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path)
    patch_rtl_default(venv)
    (venv / SITE / "staticfiles/_nuxt/87c8b95.js.gz").write_bytes(gzip.compress(CHUNK))
    assert not rtl_default_applied(venv)


def test_another_doccano_build_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path)
    for path in venv.rglob("87c8b95.js*"):
        path.unlink()
    with pytest.raises(FrontendPatchError, match="is this Doccano 1.8.4") as info:
        patch_rtl_default(venv)
    assert "staticfiles/_nuxt" in str(info.value)


def test_no_doccano_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FrontendPatchError, match="install Doccano first"):
        patch_rtl_default(tmp_path)
    assert not rtl_default_applied(tmp_path)
