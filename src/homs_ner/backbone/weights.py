"""e5's dequantised weights as a Hugging Face ``BertModel`` directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from homs_ner.backbone._e5format import E5File, E5Header
from homs_ner.backbone.hf_tokenizer import BOS_ID, EOS_ID, PAD_ID
from homs_ner.data.io import write_json

Dtype = Literal["float32", "float16"]

_LAYER_LINEAR = (
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
)
_LAYER_NORMS = (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm"))




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
    write_json(out_dir / "config.json", {**config, "torch_dtype": dtype})
