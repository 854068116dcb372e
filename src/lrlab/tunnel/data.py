"""Real text for the wind tunnel: corpora, tokenisers, a memory-mapped cache, batches.

Corpora (named in ``data.corpus``, ``data.eval_corpora``, ``data.replay_corpus``):

- ``stdlib``: the Python standard library's own source, every ``*.py`` under
  ``sysconfig.get_paths()["stdlib"]`` (site-packages excluded), in sorted path order. Code.
- ``english``: the prose of the Python Language Reference and library topics that CPython ships as
  ``pydoc_data/topics.py`` (about 0.7 MB of English, read as data with `ast.literal_eval`).
- a file or a folder (files matching ``data.glob``, sorted; files holding NUL bytes are skipped
  as binary).
- ``hf:NAME``: a Hugging Face dataset read with ``datasets`` in streaming mode (needs the package,
  network access and ``data.max_bytes``).

Documents are joined with an end-of-text token: byte 0 for the byte-level tokeniser (256 tokens;
NUL does not occur in text), ``<|endoftext|>`` for BPE. The token stream is split into blocks
(`split_blocks`); every ``round(1 / val_fraction)``-th block is held out for validation, so the
validation set is fixed and spread over the whole corpus. Both parts are cached as raw arrays under
a key that hashes the corpus identity and the tokeniser, and read back with `numpy.memmap`.

Batches are a pure function of ``(seed, step, micro-batch)``: resuming at a step reproduces the
data order exactly, and the checkpoint needs only the seed and the step.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrlab.atomic import atomic_write_bytes, atomic_write_text
from lrlab.errors import LrlabError
from lrlab.tunnel.config import DataConfig

BLOCK_TOKENS = 2048
MIN_BLOCK_TOKENS = 256
CACHE_VERSION = 1
EOT_TEXT = "<|endoftext|>"


# --- corpora ------------------------------------------------------------------------------------


def corpus_label(spec: str) -> str:
    """A short name for column headers: ``stdlib``, ``english``, a file stem, a dataset name."""
    if spec.startswith("hf:"):
        name = spec[3:]
    elif spec in ("stdlib", "english"):
        name = spec
    else:
        path = Path(spec)
        name = path.stem or path.name
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "corpus"


def _stdlib_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages"}
    files = [
        path for path in root.rglob("*.py") if not skip.intersection(path.relative_to(root).parts)
    ]
    return root, sorted(files, key=lambda path: path.relative_to(root).as_posix())


def _folder_files(root: Path, pattern: str) -> list[Path]:
    return sorted(
        (path for path in root.glob(pattern) if path.is_file()),
        key=lambda path: path.relative_to(root).as_posix(),
    )


def _english_topics() -> list[bytes]:
    path = Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as error:
        raise LrlabError(f"corpus english: cannot read {path} ({error})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "topics" for target in node.targets
        ):
            topics = ast.literal_eval(node.value)  # a literal dict of strings: data, not code
            return [topics[key].encode("utf-8") for key in sorted(topics)]
    raise LrlabError(f"corpus english: {path} has no 'topics' mapping")


def _identity(spec: str, config: DataConfig) -> dict[str, Any]:
    """What the corpus's content depends on: file names, sizes and times, or the dataset."""

    def listing(root: Path, files: list[Path]) -> str:
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(
                f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
        return digest.hexdigest()

    if spec == "stdlib":
        root, files = _stdlib_files()
        return {"stdlib": str(root), "python": sys.version, "files": listing(root, files)}
    if spec == "english":
        path = Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py"
        return {"english": str(path), "python": sys.version, "files": listing(path.parent, [path])}
    if spec.startswith("hf:"):
        return {
            "hf": spec[3:],
            "config": config.hf_config,
            "split": config.hf_split,
            "field": config.hf_text_field,
        }
    path = Path(spec).resolve()
    if path.is_file():
        return {"file": str(path), "files": listing(path.parent, [path])}
    if path.is_dir():
        return {
            "folder": str(path),
            "glob": config.glob,
            "files": listing(path, _folder_files(path, config.glob)),
        }
    raise LrlabError(
        f"data: corpus {spec!r} is not stdlib, english, hf:NAME, or an existing file or folder"
    )


def documents(spec: str, config: DataConfig) -> Iterator[bytes]:
    """The corpus's documents as UTF-8 bytes, in a fixed order, stopping at ``max_bytes``."""
    budget = config.max_bytes if config.max_bytes is not None else math.inf
    for doc in _raw_documents(spec, config):
        if budget <= 0:
            return
        if len(doc) > budget:
            doc = doc[: int(budget)]
        budget -= len(doc)
        yield doc


def _raw_documents(spec: str, config: DataConfig) -> Iterator[bytes]:
    if spec == "stdlib":
        for path in _stdlib_files()[1]:
            yield path.read_bytes()
    elif spec == "english":
        yield from _english_topics()
    elif spec.startswith("hf:"):
        yield from _hf_documents(spec[3:], config)
    else:
        path = Path(spec)
        files = [path] if path.is_file() else _folder_files(path, config.glob)
        for file in files:
            data = file.read_bytes()
            if b"\0" not in data:
                yield data


def _hf_documents(name: str, config: DataConfig) -> Iterator[bytes]:
    if config.max_bytes is None:
        raise LrlabError(f"data: corpus hf:{name} is a stream: set data.max_bytes")
    try:
        import datasets
    except ImportError:
        raise LrlabError(
            f"data: corpus hf:{name} needs the 'datasets' package (pip install datasets)"
        ) from None
    stream = datasets.load_dataset(name, config.hf_config, split=config.hf_split, streaming=True)
    for row in stream:
        text = row.get(config.hf_text_field)
        if not isinstance(text, str):
            raise LrlabError(
                f"data: hf:{name} has no text column {config.hf_text_field!r} "
                "(set data.hf_text_field)"
            )
        yield text.encode("utf-8")


# --- tokenisers ---------------------------------------------------------------------------------


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256); byte 0 ends a document."""

    vocab_size = 256
    dtype = np.uint8
    identity = "byte"

    def encode_documents(self, docs: Iterator[bytes]) -> np.ndarray:
        return np.frombuffer(b"\0".join(docs), dtype=np.uint8)

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class BPETokenizer:
    """A byte-level BPE trained locally with the Hugging Face ``tokenizers`` library."""

    dtype = np.uint16

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.eot = tokenizer.token_to_id(EOT_TEXT)
        if self.eot is None:
            raise LrlabError(f"BPE tokeniser has no {EOT_TEXT} token")
        self.json = tokenizer.to_str()
        self.identity = "bpe-" + hashlib.sha256(self.json.encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | Path) -> BPETokenizer:
        tokenizers = _import_tokenizers()
        try:
            return cls(tokenizers.Tokenizer.from_file(str(path)))
        except Exception as error:  # noqa: BLE001 - the library raises bare Exception
            raise LrlabError(f"{path}: not a tokenizers JSON file ({error})") from None

    @classmethod
    def train(cls, docs: Iterator[bytes], vocab_size: int) -> BPETokenizer:
        tokenizers = _import_tokenizers()
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tokenizer = tokenizers.Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT_TEXT],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        texts = (doc.decode("utf-8", errors="replace") for doc in docs)
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer)

    def encode_documents(self, docs: Iterator[bytes]) -> np.ndarray:
        ids: list[int] = []
        for doc in docs:
            ids.extend(self.tokenizer.encode(doc.decode("utf-8", errors="replace")).ids)
            ids.append(self.eot)
        return np.asarray(ids, dtype=np.uint16)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


Tokenizer = ByteTokenizer | BPETokenizer


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise LrlabError(
            "data.tokenizer=bpe needs the 'tokenizers' package (pip install tokenizers)"
        ) from None
    return tokenizers


def cache_root(config: DataConfig) -> Path:
    """Where tokenised corpora are cached."""
    if config.cache_dir:
        return Path(config.cache_dir)
    if os.environ.get("LRLAB_CACHE"):
        return Path(os.environ["LRLAB_CACHE"]) / "tunnel"
    return Path.home() / ".cache" / "lrlab" / "tunnel"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def build_tokenizer(config: DataConfig) -> Tokenizer:
    """The byte tokeniser, a BPE read from ``data.tokenizer_file``, or one trained on the main
    corpus (cached, so every run and sweep worker on the same corpus gets the same one)."""
    if config.tokenizer == "byte":
        return ByteTokenizer()
    if config.tokenizer_file:
        return BPETokenizer.from_file(config.tokenizer_file)
    key = _key(
        CACHE_VERSION,
        "bpe",
        _identity(config.corpus, config),
        config.max_bytes,
        config.bpe_vocab_size,
    )
    path = cache_root(config) / f"bpe-{key}.json"
    if path.is_file():
        return BPETokenizer.from_file(path)
    tokenizer = BPETokenizer.train(documents(config.corpus, config), config.bpe_vocab_size)
    atomic_write_text(path, tokenizer.json)
    return tokenizer


# --- tokenised splits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One corpus, tokenised: memory-mapped training and validation token arrays."""

    label: str
    train: np.ndarray
    val: np.ndarray


def split_blocks(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Every ``round(1 / val_fraction)``-th block to validation, the rest to training; the same
    corpus always gives the same split. Blocks hold `BLOCK_TOKENS`, or fewer (down to
    `MIN_BLOCK_TOKENS`) in a small corpus, so that it still has 16 validation blocks."""
    period = max(2, round(1.0 / val_fraction))
    size = min(BLOCK_TOKENS, max(MIN_BLOCK_TOKENS, tokens.size // (16 * period)))
    blocks = np.arange(tokens.size) // size
    is_val = blocks % period == period - 1
    return tokens[~is_val], tokens[is_val]


def load_split(spec: str, config: DataConfig, tokenizer: Tokenizer, seq_len: int) -> Split:
    """Tokenise a corpus once into the cache, then memory-map its two parts."""
    key = _key(
        CACHE_VERSION,
        _identity(spec, config),
        config.max_bytes,
        config.val_fraction,
        tokenizer.identity,
    )
    folder = cache_root(config) / f"{corpus_label(spec)}-{key}"
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        tokens = tokenizer.encode_documents(documents(spec, config))
        train, val = split_blocks(tokens, config.val_fraction)
        atomic_write_bytes(folder / "train.bin", train.tobytes())
        atomic_write_bytes(folder / "val.bin", val.tobytes())
        meta = {
            "corpus": spec,
            "tokenizer": tokenizer.identity,
            "dtype": np.dtype(tokenizer.dtype).name,
            "train_tokens": int(train.size),
            "val_tokens": int(val.size),
        }
        # meta.json is written last: its presence means both arrays are complete.
        atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    arrays = {}
    for part in ("train", "val"):
        count = meta[f"{part}_tokens"]
        if count < seq_len + 1:
            raise LrlabError(
                f"data: corpus {spec!r} has {count} {part} tokens, fewer than train.seq_len + 1 = "
                f"{seq_len + 1}; use a larger corpus or data.max_bytes"
            )
        arrays[part] = np.memmap(
            folder / f"{part}.bin", dtype=meta["dtype"], mode="r", shape=(count,)
        )
    return Split(corpus_label(spec), arrays["train"], arrays["val"])


# --- batches ------------------------------------------------------------------------------------


def shard(batch_size: int, rank: int, processes: int) -> slice:
    """The rows of a batch of `batch_size` that process `rank` of `processes` trains on (one run
    on several processes, `lrlab.tunnel.distributed`): equal shares, in rank order, so that the
    mean of the processes' losses is the loss of the whole batch. A batch that does not split
    into equal shares is an `LrlabError`."""
    if batch_size % processes:
        raise LrlabError(
            f"train.batch_size={batch_size} must be a multiple of the {processes} processes "
            "training the run (each takes an equal share of every batch)"
        )
    share = batch_size // processes
    return slice(rank * share, (rank + 1) * share)


class Batches:
    """Training batches as a pure function of ``(seed, step, micro)``.

    Each micro-batch takes `batch_size` windows of ``seq_len + 1`` tokens at random offsets. With
    replay, the last rows of micro-batch ``g = step * grad_accum + micro`` come from the replay
    corpus, ``floor((g + 1) f B) - floor(g f B)`` of them, so that the share of replayed sequences
    is exactly ``f`` over any run of micro-batches (up to one sequence).

    A process `rank` of `processes` training one run together gets its `shard` of each batch:
    the rows of the batch one process would get, so the data order is the same.
    """

    def __init__(
        self,
        main: np.ndarray,
        replay: np.ndarray | None,
        replay_fraction: float,
        batch_size: int,
        seq_len: int,
        grad_accum: int,
        seed: int,
        *,
        rank: int = 0,
        processes: int = 1,
    ) -> None:
        self.main, self.replay, self.fraction = main, replay, replay_fraction
        self.batch_size, self.seq_len, self.grad_accum, self.seed = (
            batch_size,
            seq_len,
            grad_accum,
            seed,
        )
        self.rows = shard(batch_size, rank, processes)

    def replay_rows(self, step: int, micro: int) -> int:
        """How many rows of this micro-batch come from the replay corpus."""
        if self.replay is None or self.fraction == 0.0:
            return 0
        g = step * self.grad_accum + micro
        share = self.fraction * self.batch_size
        # The tiny offset keeps exact products such as 3 * 0.1 * 10 from rounding down.
        return math.floor((g + 1) * share + 1e-9) - math.floor(g * share + 1e-9)

    def get(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets of this process's rows, each ``(rows, seq_len)`` int64
        (all `batch_size` rows for a process training alone)."""
        rng = np.random.default_rng([self.seed, step, micro])
        n_replay = self.replay_rows(step, micro)
        # Every offset of the batch is drawn, in the same order whatever the share, and only
        # this share's windows are read.
        sources = [
            (self.main, start)
            for start in _starts(self.main, rng, self.batch_size - n_replay, self.seq_len)
        ]
        if self.replay is not None and n_replay:
            sources += [
                (self.replay, start) for start in _starts(self.replay, rng, n_replay, self.seq_len)
            ]
        rows = np.stack(
            [tokens[start : start + self.seq_len + 1] for tokens, start in sources[self.rows]]
        )
        tokens = torch.from_numpy(rows.astype(np.int64))
        return tokens[:, :-1], tokens[:, 1:]


def _starts(tokens: np.ndarray, rng: np.random.Generator, count: int, seq_len: int) -> np.ndarray:
    """`count` random offsets of windows of ``seq_len + 1`` tokens."""
    return rng.integers(0, tokens.size - seq_len, size=count)


def eval_batches(
    val: np.ndarray, batch_size: int, seq_len: int, count: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed validation batches: up to ``count * batch_size`` non-overlapping windows spread
    evenly over the held-out tokens (fewer when the split is small)."""
    available = val.size // (seq_len + 1)
    wanted = min(count * batch_size, available)
    picks = np.unique(np.linspace(0, available - 1, wanted).round().astype(np.int64))
    rows = np.stack([val[i * (seq_len + 1) : (i + 1) * (seq_len + 1)] for i in picks])
    tokens = torch.from_numpy(rows.astype(np.int64))
    return [(chunk[:, :-1], chunk[:, 1:]) for chunk in tokens.split(batch_size)]
