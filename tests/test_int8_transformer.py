"""The int8 transformer architecture on a tiny random BERT: int8 predictions close to the
fp32 ones, fp32 weights untouched and serialised as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from doubles import backbone_pipeline, tiny_random_backbone
from tiny_corpus import DATA

from homs_ner.ml.int8_transformer import Int8HFShim, quantize_encoder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_random_backbone(tmp_path_factory.mktemp("hf"), [row[0] for row in DATA], hidden=64)


def hidden(nlp, text: str) -> np.ndarray:
    return np.asarray(nlp(text)._.trf_data.model_output.last_hidden_state)


def test_the_backbone_config_predicts_with_int8_linear_layers(tiny: Path) -> None:
    nlp = backbone_pipeline(tiny)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    assert isinstance(shim, Int8HFShim)
    assert hidden(nlp, DATA[0][0]).shape[-1] == 64  # the pipe runs through the int8 copy
    int8 = shim._int8_model()
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.encoder.modules())
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in shim._model.modules())
    assert int8.embeddings is shim._model.embeddings  # shared, not copied
    inputs = shim._hfmodel.tokenizer([row[0] for row in DATA], return_tensors="pt", padding=True)
    with torch.no_grad():
        fp32 = shim._model.eval()(**inputs).last_hidden_state
        quantized = int8(**inputs).last_hidden_state
    mask = inputs["attention_mask"].bool()
    cosine = torch.nn.functional.cosine_similarity(quantized[mask], fp32[mask], dim=-1)
    assert cosine.mean() > 0.95, cosine


def test_serialisation_keeps_the_fp32_weights_and_requantises_after_loading(tiny: Path) -> None:
    nlp = backbone_pipeline(tiny)
    before = hidden(nlp, DATA[1][0])
    reloaded = backbone_pipeline(tiny).from_bytes(nlp.to_bytes())
    shim = reloaded.get_pipe("transformer").model.layers[0].shims[0]
    state = shim._model.state_dict()
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())
    np.testing.assert_allclose(hidden(reloaded, DATA[1][0]), before, atol=1e-5)
    assert shim._int8[0] is shim._model


def test_quantize_encoder_leaves_the_model_it_copies_alone(tiny: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize_encoder(model)
    assert quantized.encoder is not model.encoder
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_train_top_layers_updates_only_the_top_layer_and_requantises(tiny: Path) -> None:
    """The unfreezing ablation: the callback's own AdamW moves the top layer only, and the
    next prediction runs a fresh int8 copy of the updated weights."""
    from thinc.api import ArgsKwargs

    from homs_ner.pipeline.callbacks import make_train_top_layers

    nlp = backbone_pipeline(tiny)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    before_prediction = hidden(nlp, DATA[0][0])
    stale = shim._int8
    weights = {k: v.clone() for k, v in shim._model.state_dict().items()}
    make_train_top_layers(layers=1, learn_rate=1e-2)(nlp)
    inputs = shim._hfmodel.tokenizer([row[0] for row in DATA], return_tensors="pt", padding=True)
    output, backprop = shim.begin_update(ArgsKwargs(args=(), kwargs=dict(inputs)))
    state = output.last_hidden_state
    backprop(ArgsKwargs(args=(state,), kwargs={"grad_tensors": torch.ones_like(state)}))
    shim.finish_update(None)
    top = f"encoder.layer.{len(shim._model.encoder.layer) - 1}."
    changed = {k for k, v in shim._model.state_dict().items() if not torch.equal(v, weights[k])}
    assert changed and all(k.startswith(top) for k in changed), changed
    assert shim._int8 is None
    assert not np.allclose(hidden(nlp, DATA[0][0]), before_prediction, atol=1e-4)
    assert shim._int8 is not stale


def test_train_top_layers_refuses_impossible_settings(tiny: Path) -> None:
    from homs_ner.pipeline.callbacks import make_train_top_layers

    nlp = backbone_pipeline(tiny)
    with pytest.raises(ValueError, match="layers must be 1.."):
        make_train_top_layers(layers=99)(nlp)
    assert make_train_top_layers(layers=0)(nlp) is nlp  # off: nothing changes
