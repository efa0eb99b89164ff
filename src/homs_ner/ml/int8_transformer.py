"""The shared transformer with int8 inference (`homs_ner.Int8TransformerModel.v1`).

Why: on the 2 CPU cores of the reference machine the frozen 5-layer e5 backbone is about
three quarters of the pipeline's time, and nearly all of that is its Linear layers (13 of
20 s in a profile of 30 articles). PyTorch's dynamic int8 quantisation of those layers ran a
batch of 16 x 128 wordpieces 4.6x faster, but the transformer pipe over the whole corpus
only 1.17x (2,211 -> 2,582 words/s, idle, back to back). The transformer is frozen, so every forward pass
that matters (training's annotating pass and inference) is a prediction; training the
transformer itself (`begin_update`) and serialisation keep the fp32 weights, so a pipeline
saved with this architecture has exactly the weights of one saved without it, and the heads
are trained on the same int8 features they see at inference.

Known cost: activations are quantised per batch, so a text's vectors move slightly with the
other texts of its batch (the heads read them through a LayerNorm; measured on dev in
reports/ablations.md). `torch.ao.quantization` is deprecated in favour of torchao but still
works in the pinned torch 2.13.0; its deprecation warnings are silenced here only.
"""

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from spacy.util import registry
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import ArgsKwargs, Model


class Int8HFShim(HFShim):
    """An HFShim whose predictions run an int8 copy of the encoder's Linear layers.

    The copy is made on the first prediction and remade whenever the fp32 model object
    changes (initialisation, `from_bytes`); it shares the embeddings, the largest part of
    the model (250,000 x 384 floats), with the fp32 model rather than duplicating them.
    """

    _int8: tuple[torch.nn.Module, torch.nn.Module] | None = None
    _top_optimizer: torch.optim.Optimizer | None = None

    def train_top_layers(self, layers: int, learn_rate: float) -> None:
        """Let training update only the top `layers` encoder layers, with their own AdamW.

        Why their own optimizer: the heads' Adam runs at 1e-3, which would wreck pretrained
        weights; and with every other parameter `requires_grad=False`, autograd keeps no
        graph below the top layers, so the backward pass costs only those layers.
        """
        encoder_layers = self._model.encoder.layer
        if not 0 < layers <= len(encoder_layers):
            raise ValueError(f"train_top_layers: layers must be 1..{len(encoder_layers)}, got {layers}")
        for param in self._model.parameters():
            param.requires_grad_(False)
        trainable = [param for layer in encoder_layers[-layers:] for param in layer.parameters()]
        for param in trainable:
            param.requires_grad_(True)
        self._top_optimizer = torch.optim.AdamW(trainable, lr=learn_rate)

    def finish_update(self, optimizer: Any) -> None:
        """The top layers' own AdamW step when `train_top_layers` was called; the int8 copy
        is then stale and remade at the next prediction."""
        if self._top_optimizer is None:
            return super().finish_update(optimizer)
        params = [p for group in self._top_optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self._top_optimizer.step()
        self._top_optimizer.zero_grad(set_to_none=True)
        self._int8 = None

    def predict(self, inputs: ArgsKwargs) -> Any:
        model = self._int8_model()
        with torch.no_grad():
            return model(*inputs.args, **inputs.kwargs)

    def _int8_model(self) -> torch.nn.Module:
        if self._int8 is None or self._int8[0] is not self._model:
            self._int8 = (self._model, quantize_encoder(self._model))
        return self._int8[1]


def quantize_encoder(model: torch.nn.Module) -> torch.nn.Module:
    """A shallow copy of a Hugging Face model whose `encoder` has int8 dynamic Linear layers.

    Only the encoder is copied (deeply, then quantised); the embeddings and everything else
    stay shared with `model`, whose own weights are never changed.
    """
    quantized = copy.copy(model)
    quantized._modules = dict(model._modules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        encoder = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model.encoder), {torch.nn.Linear}, dtype=torch.qint8
        )
    quantized._modules["encoder"] = encoder
    return quantized.eval()


@registry.architectures("homs_ner.Int8TransformerModel.v1")
def build_int8_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
) -> Model:
    """spacy-transformers' TransformerModel.v3 whose predictions run int8 Linear layers.

    Same arguments, weights and serialisation as `spacy-transformers.TransformerModel.v3`;
    only the shim's `predict` differs (see the module docstring for why and at what cost).
    """
    build = registry.get("architectures", "spacy-transformers.TransformerModel.v3")
    model = build(
        name=name,
        get_spans=get_spans,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
    )
    shim = model.layers[0].shims[0]
    shim.__class__ = Int8HFShim
    return model
