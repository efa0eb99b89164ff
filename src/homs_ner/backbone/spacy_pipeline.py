"""The backbone as a spaCy pipeline: [tokenizer, transformer] from a config such as the
repository's ``configs/backbone.cfg`` (which ``spacy assemble`` also builds into the pipeline
that ``configs/transformer.cfg`` sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def backbone_pipeline(transformer: str | Path, *, config: Path, hidden_states: bool = False) -> Any:
    """The initialised [tokenizer, transformer] pipeline of ``config`` on ``transformer``.

    ``hidden_states`` keeps every layer's output in ``doc._.trf_data`` (for the probe).
    """
    import spacy
    from thinc.api import Config

    cfg = Config().from_disk(config, overrides={"paths.transformer": str(transformer)})
    if hidden_states:
        cfg["components"]["transformer"]["model"]["transformer_config"] = {"output_hidden_states": True}
    nlp = spacy.util.load_model_from_config(cfg, auto_fill=True)
    nlp.initialize()
    return nlp
