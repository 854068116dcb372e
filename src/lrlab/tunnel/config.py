"""The wind tunnel's configuration: four sections of typed fields, read from YAML or JSON.

A config file is a mapping with the sections ``model``, ``optim``, ``data`` and ``train`` (and an
optional ``out`` folder). Every field has a default; a file gives only what it changes. Fields are
declared with `lrlab.settings`, so reading is strict: an unknown section or field, a wrong type or
an out-of-range value is an `LrlabError` naming the file, the section and the field
(``config.yaml: model: d_model=-3 is out of range (an integer in [1, inf))``). YAML is read with
`yaml.safe_load`, so a config file can hold data only, never Python objects.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError, SpecError
from lrlab.mapping_file import NotParsed, load_data, read_mapping
from lrlab.schedules import MAX_STEPS, Schedule, from_spec
from lrlab.settings import (
    check_fields,
    choice,
    custom,
    flag,
    from_mapping,
    integer,
    integers,
    real,
    text,
    texts,
)


@dataclasses.dataclass(kw_only=True)
class ModelConfig:
    """The decoder-only transformer (see `lrlab.tunnel.model`)."""

    d_model: int = integer(128, help="width of the residual stream", low=1)
    n_layers: int = integer(4, help="number of transformer blocks", low=1)
    n_heads: int = integer(4, help="attention heads per block (d_model must be a multiple)", low=1)
    d_ff: int | None = integer(
        None, help="SwiGLU hidden width (default 8/3 d_model, rounded up to 16)", low=1
    )
    qk_norm: bool = flag(False, help="RMS-normalise queries and keys (Wortsman et al. 2023)")
    z_loss: float = real(
        0.0,
        help="weight of the z-loss, mean log(Z)^2 of the output logits (PaLM uses 1e-4)",
        low=0.0,
    )
    tied_embeddings: bool = flag(True, help="share the input embedding and the output projection")
    bias: bool = flag(False, help="add biases to the linear layers")
    mup_base_width: int | None = integer(
        None, help="enable muP with this base width (Yang et al. 2022)", low=1
    )
    init_std: float = real(0.02, help="standard deviation of the initial weights", low=0.0)
    rope_base: float = real(10000.0, help="base of the rotary-embedding frequencies", low=1.0)
    norm_eps: float = real(1e-6, help="epsilon of RMSNorm", low=0.0)

    def __post_init__(self) -> None:
        check_fields(self, "model")


@dataclasses.dataclass(kw_only=True)
class OptimConfig:
    """AdamW with decoupled weight decay (Loshchilov & Hutter 2019) and gradient clipping."""

    beta1: float = real(0.9, help="AdamW beta1", low=0.0, high=1.0)
    beta2: float = real(0.95, help="AdamW beta2", low=0.0, high=1.0)
    eps: float = real(1e-8, help="AdamW epsilon", low=0.0)
    weight_decay: float = real(0.1, help="decoupled weight decay", low=0.0)
    grad_clip: float = real(
        1.0, help="clip the global gradient norm to this (0: no clipping)", low=0.0
    )
    decay_norms: bool = flag(False, help="apply weight decay to the RMSNorm gains")
    decay_biases: bool = flag(False, help="apply weight decay to the biases")
    decay_embeddings: bool = flag(False, help="apply weight decay to the embedding matrix")

    def __post_init__(self) -> None:
        check_fields(self, "optim")


@dataclasses.dataclass(kw_only=True)
class DataConfig:
    """Corpora, tokeniser and split (see `lrlab.tunnel.data`)."""

    corpus: str = text(
        "stdlib",
        help="training corpus: stdlib, english, a file, a folder, or hf:NAME (Hugging Face "
        "streaming)",
    )
    eval_corpora: tuple[str, ...] = texts([], help="more corpora to report validation loss on")
    replay_corpus: str | None = text(
        None, help="corpus replayed during training (continual pre-training: stage A)"
    )
    replay_fraction: float = real(
        0.0, help="fraction of training sequences drawn from replay_corpus", low=0.0, high=1.0
    )
    tokenizer: str = choice(
        "byte",
        help="byte (256 tokens) or bpe (trained locally, needs the tokenizers package)",
        choices=("byte", "bpe"),
    )
    bpe_vocab_size: int = integer(
        4096, help="vocabulary size of a BPE tokeniser", low=260, high=65535
    )
    tokenizer_file: str | None = text(None, help="tokenizer.json of a BPE tokeniser to reuse")
    val_fraction: float = real(
        0.05, help="fraction of each corpus held out for validation", low=0.001, high=0.5
    )
    max_bytes: int | None = integer(None, help="read at most this many bytes of each corpus", low=1)
    glob: str = text("**/*", help="files read from a corpus folder")
    cache_dir: str | None = text(
        None, help="tokenised-data cache (default $LRLAB_CACHE or ~/.cache/lrlab/tunnel)"
    )
    hf_config: str | None = text(None, help="Hugging Face dataset configuration")
    hf_split: str = text("train", help="Hugging Face dataset split")
    hf_text_field: str = text("text", help="Hugging Face dataset text column")

    def __post_init__(self) -> None:
        check_fields(self, "data")


def _schedule_spec(where: str, value: Any) -> dict[str, Any]:
    """A schedule spec (string, dict or `Schedule`) checked and resolved to its full spec dict,
    which is what a run folder's ``config.json`` stores."""
    try:
        return from_spec(value).to_spec()
    except SpecError as error:
        raise LrlabError(f"{where}: {error}") from None


@dataclasses.dataclass(kw_only=True)
class TrainConfig:
    """The loop: schedule, batch, evaluation, checkpoints, divergence, device."""

    schedule: dict[str, Any] = custom(
        "wsd(peak=3e-3, total=1000, warmup=100, cooldown_fraction=0.2)",
        help="lrlab schedule spec giving the LR at each step",
        noun="a schedule spec",
        convert=_schedule_spec,
    )
    steps: int = integer(1000, help="optimizer steps", low=1, high=MAX_STEPS)
    # 2^20 sequences or tokens: beyond any micro-batch or context a machine holds (a guard
    # against absurd values; what fits is the model's and the machine's matter).
    batch_size: int = integer(16, help="sequences per micro-batch", low=1, high=2**20)
    grad_accum: int = integer(1, help="micro-batches per optimizer step", low=1)
    seq_len: int = integer(256, help="tokens per sequence", low=2, high=2**20)
    eval_interval: int = integer(
        100, help="evaluate every this many steps (and at the last step)", low=1
    )
    eval_batches: int = integer(8, help="validation batches per corpus and evaluation", low=1)
    checkpoint_interval: int = integer(250, help="save a checkpoint every this many steps", low=1)
    keep_checkpoints: int = integer(3, help="keep the last K periodic checkpoints", low=1)
    # No bound here: `validate` checks them against train.steps, naming both ends.
    keep_steps: tuple[int, ...] = integers(
        [], help="steps whose checkpoints are always kept (branch points)", low=None
    )
    seed: int = integer(0, help="seed of the weights and the data order", low=0)
    device: str = text("auto", help="auto, cpu, cuda or cuda:N")
    precision: str = choice(
        "auto",
        help="auto (bf16 autocast on GPU, float32 on CPU), fp32 or bf16",
        choices=("auto", "fp32", "bf16"),
    )
    compile: bool = flag(False, help="torch.compile the model (GPU)")
    threads: int | None = integer(
        None,
        help="CPU threads for torch (default: chosen from the free cores and the model's size)",
        low=1,
    )
    spike_factor: float = real(
        3.0,
        help="diverged when the loss exceeds this times its lowest running average (0: only "
        "NaN/inf)",
        low=0.0,
    )
    tensorboard: bool = flag(False, help="also log to TensorBoard (needs the tensorboard package)")
    progress: str = choice(
        "auto",
        help="progress on stderr: auto (a bar on a terminal, else a line every "
        "progress_seconds), on (the bar), lines, off",
        choices=("auto", "on", "lines", "off"),
    )
    progress_seconds: float = real(
        10.0, help="seconds between progress lines (when not a bar)", low=0.0
    )
    branch_from: str | None = text(
        None,
        help="checkpoint to branch from: keeps its step, data order and optimizer; a new "
        "schedule from there",
    )
    init_from: str | None = text(
        None,
        help="checkpoint or run folder whose weights start a new stage (continual pre-"
        "training) at step 0",
    )
    init_optimizer: bool = flag(True, help="with init_from, also take the optimizer moments")

    def __post_init__(self) -> None:
        check_fields(self, "train")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "train": TrainConfig,
}


@dataclasses.dataclass
class Config:
    """A whole wind-tunnel run."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, lists as lists: what ``config.json`` and checkpoints store and
        what a resumed run is compared with (so it must not change between versions)."""
        return _plain(dataclasses.asdict(self))

    def schedule(self) -> Schedule:
        """The schedule of ``train.schedule``."""
        return from_spec(self.train.schedule)


def _plain(value: Any) -> Any:
    """`value` with every tuple turned into a list, as JSON would read it back."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --- reading ------------------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML (``.yaml``/``.yml``) or JSON config file."""
    return config_from_dict(read_mapping(path), str(path))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a `Config` from plain data; errors start with `source`."""
    unknown = [key for key in data if key not in (*SECTIONS, "out")]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(SECTIONS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LrlabError(
            f"{source}: unknown section {unknown[0]!r}{hint} (sections: {', '.join(SECTIONS)}, out)"
        )
    sections = {}
    for name, cls in SECTIONS.items():
        values = data.get(name) or {}
        if not isinstance(values, dict):
            raise LrlabError(f"{source}: section {name!r} must be a mapping of fields")
        sections[name] = from_mapping(cls, values, f"{source}: {name}")
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise LrlabError(f"{source}: out={out!r} must be a folder path")
    config = Config(**sections, out=out)
    validate(config, source)
    return config


def validate(config: Config, source: str = "config") -> None:
    """Cross-field checks; each error names the fields."""
    model, data, train = config.model, config.data, config.train
    if model.d_model % model.n_heads:
        raise LrlabError(
            f"{source}: model.d_model={model.d_model} must be a multiple of "
            f"model.n_heads={model.n_heads}"
        )
    if (model.d_model // model.n_heads) % 2:
        raise LrlabError(
            f"{source}: model.d_model / model.n_heads = "
            f"{model.d_model // model.n_heads} must be even (rotary embeddings)"
        )
    if data.replay_fraction > 0 and data.replay_corpus is None:
        raise LrlabError(
            f"{source}: data.replay_fraction={data.replay_fraction} needs data.replay_corpus"
        )
    if train.branch_from and train.init_from:
        raise LrlabError(f"{source}: give train.branch_from or train.init_from, not both")
    if train.device not in ("auto", "cpu", "cuda") and not train.device.startswith("cuda:"):
        raise LrlabError(
            f"{source}: train.device={train.device!r} must be auto, cpu, cuda or cuda:N"
        )
    if any(step < 1 or step > train.steps for step in train.keep_steps):
        raise LrlabError(f"{source}: train.keep_steps must lie in [1, train.steps={train.steps}]")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` overrides (values read as YAML) to a config mapping."""
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts) or len(parts) > 2:
            raise LrlabError(f"--set {item!r}: expected section.field=value (or out=FOLDER)")
        try:  # bounded like a config file (an alias bomb in one --set is one too)
            value = load_data(text, f"--set {key.strip()}") if text.strip() else None
        except NotParsed:
            value = text
        if len(parts) == 1:
            data[parts[0]] = value
            continue
        section = data.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise LrlabError(f"--set {item!r}: section {parts[0]!r} is not a mapping")
        section[parts[1]] = value
    return data
