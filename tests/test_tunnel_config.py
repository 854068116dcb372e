"""Wind-tunnel configs: YAML/JSON reading, strict validation, one-line errors naming the field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lrlab.errors import LrlabError
from lrlab.settings import MISSING, rule_of
from lrlab.tunnel.config import (
    SECTIONS,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
)


def test_defaults_and_round_trip(tmp_path: Path) -> None:
    config = config_from_dict({})
    assert config.model.d_model == 128 and config.train.steps == 1000
    assert config.to_dict()["train"]["schedule"]["name"] == "wsd"
    path = tmp_path / "c.yaml"
    path.write_text(
        "model:\n  d_model: 64\n  n_heads: 2\ntrain:\n  schedule: "
        "'cosine(peak=1e-3, total=50)'\n  steps: 50\n"
    )
    loaded = load_config(path)
    assert loaded.model.d_model == 64
    assert loaded.train.schedule == {
        "name": "cosine",
        "peak": 1e-3,
        "total": 50,
        "warmup": 0,
        "warmup_shape": "linear",
        "warmup_start_ratio": 0.01,
        "end": None,
        "end_ratio": None,
    }
    # The resolved config is itself a valid config.
    assert config_from_dict(loaded.to_dict()) == loaded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modle": {}}, "unknown section 'modle' (did you mean 'model'?)"),
        ({"model": {"d_modle": 3}}, "model: unknown field 'd_modle', did you mean 'd_model'?"),
        ({"model": {"d_model": -3}}, "model: d_model=-3 is out of range (an integer in [1, inf))"),
        ({"model": {"d_model": 2.5}}, "model: d_model=2.5 is not an integer in [1, inf)"),
        ({"model": {"qk_norm": "yes"}}, "model: qk_norm='yes' must be true or false"),
        ({"optim": {"beta2": 1.5}}, "optim: beta2=1.5 is out of range (a number in [0, 1])"),
        (
            {"data": {"tokenizer": "words"}},
            "data: tokenizer='words' is not allowed (one of byte, bpe)",
        ),
        ({"data": {"eval_corpora": "stdlib"}}, "data: eval_corpora must be a list of strings"),
        ({"data": {"eval_corpora": ["a", 1]}}, "data: eval_corpora[1]=1 must be a string"),
        ({"train": {"steps": None}}, "train: steps is required (an integer in [1, 10000000])"),
        ({"model": "wide"}, "section 'model' must be a mapping of fields"),
        ({"out": 3}, "out=3 must be a folder path"),
        ({"train": {"keep_steps": [0]}}, "train.keep_steps must lie in [1, train.steps=1000]"),
        ({"model": {"d_model": 30, "n_heads": 4}}, "model.d_model=30 must be a multiple of"),
        ({"model": {"d_model": 36, "n_heads": 4}}, "must be even (rotary embeddings)"),
        (
            {"train": {"schedule": "cosine(peak=1e-3)"}},
            "train: schedule: cosine: total is required",
        ),
        ({"train": {"schedule": "wsdd(peak=1)"}}, "train: schedule: unknown schedule 'wsdd'"),
        ({"data": {"replay_fraction": 0.2}}, "data.replay_fraction=0.2 needs data.replay_corpus"),
        ({"train": {"device": "tpu"}}, "train.device='tpu' must be auto, cpu, cuda"),
        ({"train": {"branch_from": "a", "init_from": "b"}}, "give train.branch_from or"),
    ],
)
def test_validation_errors_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(LrlabError) as error:
        config_from_dict(data, "c.yaml")
    text = str(error.value)
    assert text.startswith("c.yaml: ") and message in text and "\n" not in text


def test_files_errors_name_file_and_line(tmp_path: Path) -> None:
    bad_json = tmp_path / "c.json"
    bad_json.write_text('{"model": {\n  "d_model": 64,\n}}')
    with pytest.raises(LrlabError, match=r"c\.json, line 3: not valid JSON"):
        load_config(bad_json)
    bad_yaml = tmp_path / "c.yaml"
    bad_yaml.write_text("model:\n  d_model: [1, 2\n")
    with pytest.raises(LrlabError, match=r"c\.yaml, line \d+"):
        load_config(bad_yaml)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(LrlabError, match="must be a mapping of sections"):
        load_config(listing)
    with pytest.raises(LrlabError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"model: !!python/object/apply:os.mkdir ['{marker}']\n")
    with pytest.raises(LrlabError):
        load_config(evil)
    assert not marker.exists()


def test_overrides() -> None:
    data = apply_overrides(
        {"model": {"d_model": 64}},
        [
            "model.n_layers=3",
            "train.schedule=constant(peak=1e-3)",
            "data.eval_corpora=[stdlib]",
            "out=runs/x",
            "model.qk_norm=true",
        ],
    )
    config = config_from_dict(data)
    assert (config.model.n_layers, config.model.qk_norm, config.out) == (3, True, "runs/x")
    assert config.data.eval_corpora == ("stdlib",)
    assert config.train.schedule["name"] == "constant"
    with pytest.raises(LrlabError, match="expected section.field=value"):
        apply_overrides({}, ["model.d_model"])


def test_to_dict_is_what_json_reads_back() -> None:
    # Checkpoints store this dict and resuming compares it field by field, so list fields must
    # come out as lists (as they did before), not as the tuples the sections hold.
    data = config_from_dict(
        {"data": {"eval_corpora": ["stdlib"]}, "train": {"keep_steps": [10]}}
    ).to_dict()
    assert data["data"]["eval_corpora"] == ["stdlib"] and data["train"]["keep_steps"] == [10]
    assert json.loads(json.dumps(data)) == data
    assert config_from_dict(data).to_dict() == data


def test_sections_check_their_fields_when_built_directly() -> None:
    with pytest.raises(LrlabError, match=r"^model: d_model=0 is out of range"):
        ModelConfig(d_model=0)
    assert TrainConfig(schedule="constant(peak=1e-3)").schedule["name"] == "constant"
    assert OptimConfig(beta1=0).beta1 == 0.0 and isinstance(OptimConfig(beta1=0).beta1, float)


def section_table(cls: type) -> str:
    """The reference table of one config section, from its settings declarations."""
    lines = ["| field | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        rule = rule_of(field)
        default = field.default if field.default_factory is MISSING else field.default_factory()
        shown = json.dumps(default)
        lines.append(f"| `{field.name}` | `{shown}` | {rule.describe()} | {rule.help} |")
    return "\n".join(lines)


def test_docs_reference_lists_every_field_as_declared() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "tunnel.md").read_text()
    for name, cls in SECTIONS.items():
        assert f"**`{name}`**\n\n{section_table(cls)}\n" in docs, name
