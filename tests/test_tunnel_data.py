"""Wind-tunnel data: real corpora, memory-mapped cache, a fixed split, batches, replay mixing."""

from __future__ import annotations

import sys
import sysconfig
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrlab.errors import LrlabError
from lrlab.tunnel import data as tunnel_data
from lrlab.tunnel.config import DataConfig
from lrlab.tunnel.data import (
    BLOCK_TOKENS,
    MIN_BLOCK_TOKENS,
    Batches,
    ByteTokenizer,
    corpus_label,
    documents,
    eval_batches,
    load_split,
    split_blocks,
)


def data_config(tmp_path: Path, **changes: object) -> DataConfig:
    return DataConfig(**{"cache_dir": str(tmp_path / "cache"), "max_bytes": 60_000, **changes})


def test_default_corpora_are_real_text(tmp_path: Path) -> None:
    config = data_config(tmp_path)
    code = b"".join(documents("stdlib", config))
    assert len(code) == 60_000
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    first = min(p.relative_to(stdlib).as_posix() for p in stdlib.glob("*.py"))
    assert code.startswith((stdlib / first).read_bytes()[:1000])
    english = b"".join(documents("english", config)).decode()
    assert "statement" in english and "def " not in english[:200]
    assert corpus_label("english") == "english" and corpus_label("/x/My Book.txt") == "My_Book"


def test_folder_corpus_sorted_and_skips_binary(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_bytes(b"second")
    (folder / "a.txt").write_bytes(b"first")
    (folder / "sub" / "c.txt").write_bytes(b"third")
    (folder / "blob.bin").write_bytes(b"\0\1\2")
    assert list(documents(str(folder), data_config(tmp_path))) == [b"first", b"second", b"third"]
    with pytest.raises(LrlabError, match="is not stdlib, english, hf:NAME"):
        load_split(str(tmp_path / "nope"), data_config(tmp_path), ByteTokenizer(), 8)


def test_memmap_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = data_config(tmp_path)
    first = load_split("english", config, ByteTokenizer(), 64)
    assert isinstance(first.train, np.memmap) and first.train.dtype == np.uint8
    separators = len(list(documents("english", config))) - 1  # byte 0 between documents
    assert first.train.size + first.val.size == 60_000 + separators

    def fail(*args: object) -> None:
        raise AssertionError("re-tokenised a cached corpus")

    monkeypatch.setattr(ByteTokenizer, "encode_documents", fail)
    second = load_split("english", config, ByteTokenizer(), 64)
    assert np.array_equal(first.train, second.train) and np.array_equal(first.val, second.val)
    # A different size is a different cache entry.
    monkeypatch.undo()
    other = load_split("english", data_config(tmp_path, max_bytes=30_000), ByteTokenizer(), 64)
    assert other.train.size < first.train.size


def test_validation_split_is_fixed_and_spread() -> None:
    tokens = np.arange(200 * BLOCK_TOKENS, dtype=np.int64)
    train, val = split_blocks(tokens, 0.1)
    assert val.size == 20 * BLOCK_TOKENS and train.size + val.size == tokens.size
    assert set(np.unique(val // BLOCK_TOKENS)) == set(range(9, 200, 10))
    # A small corpus gets smaller blocks, so its validation part is still spread out.
    _, small_val = split_blocks(tokens[: 20 * BLOCK_TOKENS], 0.1)
    assert np.unique(small_val // MIN_BLOCK_TOKENS).size == 16
    again_train, again_val = split_blocks(tokens, 0.1)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    batches = eval_batches(val, 4, 31, 3)
    assert len(batches) == 3 and batches[0][0].shape == (4, 31)
    assert all(
        torch.equal(a[0], b[0]) for a, b in zip(batches, eval_batches(val, 4, 31, 3), strict=True)
    )


def test_too_small_corpus_is_a_clear_error(tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("a short real sentence.")
    with pytest.raises(LrlabError, match=r"fewer than train.seq_len \+ 1"):
        load_split(str(small), data_config(tmp_path), ByteTokenizer(), 64)


def test_batches_are_a_function_of_seed_and_step() -> None:
    tokens = np.arange(10_000, dtype=np.uint16)
    batches = Batches(tokens, None, 0.0, 4, 16, 2, seed=7)
    x, y = batches.get(3, 1)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(
        batches.get(3, 1)[0], Batches(tokens, None, 0.0, 4, 16, 2, seed=7).get(3, 1)[0]
    )
    assert not torch.equal(batches.get(3, 1)[0], batches.get(4, 1)[0])
    assert not torch.equal(
        batches.get(3, 1)[0], Batches(tokens, None, 0.0, 4, 16, 2, seed=8).get(3, 1)[0]
    )


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.3, 1.0])
def test_replay_fraction_is_exact(fraction: float) -> None:
    main = np.zeros(5000, dtype=np.uint8)
    replay = np.ones(5000, dtype=np.uint8)
    batches = Batches(main, replay, fraction, 8, 8, 3, seed=0)
    rows = 0
    for step in range(50):
        for micro in range(3):
            x, _ = batches.get(step, micro)
            replayed = int((x[:, 0] == 1).sum())
            assert replayed == batches.replay_rows(step, micro)
            assert torch.all(x[8 - replayed :] == 1) and torch.all(x[: 8 - replayed] == 0)
            rows += replayed
    assert abs(rows - fraction * 8 * 150) <= 1


def test_bpe_tokenizer_trains_locally(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    config = data_config(tmp_path, tokenizer="bpe", bpe_vocab_size=400, max_bytes=40_000)
    tokenizer = tunnel_data.build_tokenizer(config)
    assert tokenizer.vocab_size == 400
    text = "The assert statement is a convenient way to insert debugging assertions."
    ids = tokenizer.tokenizer.encode(text).ids
    assert tokenizer.decode(ids) == text and len(ids) < len(text)
    split = load_split("english", config, tokenizer, 32)
    assert split.train.dtype == np.uint16 and int(split.train.max()) < 400
    # Cached: the same tokeniser comes back, and a saved file can be reused.
    assert tunnel_data.build_tokenizer(config).identity == tokenizer.identity
    saved = tmp_path / "tok.json"
    saved.write_text(tokenizer.json)
    reused = tunnel_data.build_tokenizer(
        data_config(tmp_path, tokenizer="bpe", tokenizer_file=str(saved))
    )
    assert reused.identity == tokenizer.identity


def test_hugging_face_streaming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    english = [doc.decode() for doc in documents("english", data_config(tmp_path))]
    calls = []

    def load_dataset(name: str, config: str | None, split: str, streaming: bool) -> list:
        calls.append((name, config, split, streaming))
        return [{"text": doc} for doc in english]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    config = data_config(tmp_path, max_bytes=5000, hf_config="en")
    docs = list(documents("hf:some/corpus", config))
    assert sum(map(len, docs)) == 5000 and calls == [("some/corpus", "en", "train", True)]
    assert corpus_label("hf:some/corpus") == "some_corpus"
    with pytest.raises(LrlabError, match="set data.max_bytes"):
        list(documents("hf:some/corpus", data_config(tmp_path, max_bytes=None)))
    with pytest.raises(LrlabError, match="no text column 'content'"):
        list(documents("hf:x", data_config(tmp_path, hf_text_field="content")))
