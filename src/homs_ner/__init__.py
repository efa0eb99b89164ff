"""homs-ner: actors, places, quantities, dates, agreement clauses and their relations
in Arabic news about the Homs sieges and agreements (2012-2017).

The package follows the data: `data` (corpus, schema, records, validation, conversion) ->
`doccano` (annotation server, client, sync) -> `pipeline` and `ml` (spaCy components and
their models) with `backbone` (the offline transformer) -> `evaluate` -> `outputs`; `cli`
drives every stage. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["analyze", "analyze_many", "load", "__version__"]


def __getattr__(name: str) -> Any:
    """`homs_ner.load`, `analyze`, `analyze_many` on first use: importing the package (as the
    command line does) must not import spaCy."""
    if name in ("analyze", "analyze_many", "load"):
        from homs_ner.outputs import api

        return getattr(api, name)
    raise AttributeError(f"module 'homs_ner' has no attribute {name!r}")
