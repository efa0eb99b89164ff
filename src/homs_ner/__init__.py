"""homs-ner: actors, places, quantities, dates, agreement clauses and their relations
in Arabic news about the Homs sieges and agreements (2012-2017)."""

__version__ = "0.1.0"

from .api import analyze, analyze_many, load

__all__ = ["analyze", "analyze_many", "load", "__version__"]
