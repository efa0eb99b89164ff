"""Test doubles and the library bound to this repository's files.

The library takes every path as an argument (only `homs_ner.cli.defaults` knows the
repository's layout); the tests call it through these helpers, which pass the repository's
own `configs/backbone.cfg`, and build a tiny random backbone instead of converting e5.
"""

from __future__ import annotations

import math
import os
import signal
from collections import Counter
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from homs_ner.backbone import build
from homs_ner.backbone._e5format import MASK_PIECE, SPECIAL_PIECES, E5Header
from homs_ner.backbone.hf_tokenizer import META, MODEL_MAX_LENGTH, TokenizerSpec, write_tokenizer_files
from homs_ner.backbone.spacy_pipeline import backbone_pipeline as _backbone_pipeline
from homs_ner.backbone.weights import bert_config
from homs_ner.cli.defaults import BACKBONE_CONFIG, CORPUS_DIR, SCHEMA_PATH
from homs_ner.data import corpus, schema
from homs_ner.evaluate.probe import probe_layers as _probe_layers
from homs_ner.outputs.archive import ArticleWorker

backbone_pipeline = partial(_backbone_pipeline, config=BACKBONE_CONFIG)
"""`homs_ner.backbone.spacy_pipeline.backbone_pipeline` on the repository's backbone config."""
probe_layers = partial(_probe_layers, config=BACKBONE_CONFIG)
"""`homs_ner.evaluate.probe.probe_layers` on the repository's backbone config."""


def load_schema(path: Path = SCHEMA_PATH) -> schema.Schema:
    """The repository's label schema (or the one at `path`)."""
    return schema.load_schema(path)


def load_articles(corpus_dir: Path = CORPUS_DIR) -> list[corpus.Article]:
    """The repository's articles (or those in `corpus_dir`)."""
    return corpus.load_articles(corpus_dir)

TINY_NORM_RULES = {"\t": " ", "\n": " ", "\r": " ", "\u200e": "", "\u200f": ""}
"""Whitespace folding and bidi-mark deletion, as e5's rules do, for the tiny test backbone."""


def tiny_random_backbone(
    out_dir: str | Path,
    vocab_texts: Iterable[str],
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
) -> Path:
    """A randomly initialised tiny BERT with a unigram tokenizer over ``vocab_texts``.

    Same files and code path as the real backbone (charsmap, sentencepiece model, fast
    tokenizer, safetensors), so component tests exercise the real loading path in
    well under a second instead of converting 470 MB of weights.
    """
    import torch
    from transformers import BertConfig, BertModel

    spec = _tiny_tokenizer_spec(vocab_texts)
    header = E5Header(hidden, layers, heads, 4 * hidden, len(spec.pieces), MODEL_MAX_LENGTH, 2, 1e-12)
    config = bert_config(header, len(spec.pieces))
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**config))
    state = {name: tensor.detach().numpy() for name, tensor in model.state_dict().items()}
    out_dir = Path(out_dir)
    with build.staging_dir(out_dir) as stage:
        write_tokenizer_files(spec, stage)
        build.write_model(state, config, stage)  # through `build`, so a test can interrupt it
    return out_dir


def _tiny_tokenizer_spec(texts: Iterable[str]) -> TokenizerSpec:
    """Whole words and single characters (with and without ``▁``), scored by log frequency."""
    counts: Counter[str] = Counter({META: 1})
    for text in texts:
        for word in text.split():
            counts[META + word] += 1
            counts.update(word)
            counts.update(META + char for char in word)
    for special in (*SPECIAL_PIECES, MASK_PIECE):
        counts.pop(special, None)
    total = sum(counts.values())
    pieces = sorted(counts, key=lambda piece: (-counts[piece], piece))
    scores = [math.log(counts[piece] / total) for piece in pieces]
    return TokenizerSpec(
        [*SPECIAL_PIECES, *pieces, MASK_PIECE], [0.0] * 4 + scores + [0.0], dict(TINY_NORM_RULES)
    )




class CrashOnceWorker(ArticleWorker):
    """Fault injection for `extract-archive` on Ray: an `ArticleWorker` whose process kills
    itself (SIGKILL, as the OOM killer would) the first time it meets an article whose `url`
    is `crash-once:<flag file>`; the flag file makes "first" hold across the restarted actor."""

    def process(self, rows: list[dict]) -> list[dict]:
        for row in rows:
            flag = (row.get("url") or "").removeprefix("crash-once:")
            if flag != (row.get("url") or "") and not os.path.exists(flag):
                Path(flag).write_text(str(os.getpid()), encoding="utf-8")
                os.kill(os.getpid(), signal.SIGKILL)
        return super().process(rows)
