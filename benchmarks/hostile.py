"""Hostile and broken input: every bad input and fault this script knows, run through the real
``lrlab`` command line, each case classified.

Issue 18 reported an adversarial pass of 465 bad inputs; its case list was not kept. This script
is a reconstruction of its categories (YAML/JSON bombs and deep nesting, crafted fit files, giant
and absurd arguments, outputs that are folders or inputs, plot labels, log files, wind-tunnel
configs, checkpoints and concurrent writers, study configs, signals and pipes), not the original
cases. Each case runs ``python -m lrlab ARGS`` in a fresh folder holding small valid fixtures
(logs, fits, specs) plus the case's own hostile files, under a memory limit (4 GiB of address
space; 16 GiB for the cases that import PyTorch) and a time limit, and is classified as

- ``ok``: the input is valid after all (a ``$`` in a file name) and the command did the right
  thing (checked per case);
- ``clear error``: non-zero exit and one ``lrlab: error: ...`` line of at most 300 characters
  (other ``lrlab:`` progress or warning lines allowed), no traceback;
- ``unclear error``: non-zero exit without a traceback, but the message is missing, longer than
  that or spans several lines;
- ``traceback``: a Python traceback (or lrlab's last-resort ``internal error`` line);
- ``blow-up``: killed by the time or memory limit;
- ``silent wrong``: exit 0 on input that must be refused, NaN/inf/negative numbers printed, or
  a valid input refused;
- ``data loss``: a file that existed before the command (an input, a finished run) was changed or
  removed, or a file was written outside the case's folder.

Usage::

    python benchmarks/hostile.py                 # every case (about 10 minutes on 2 cores)
    python benchmarks/hostile.py --skip-tunnel   # without the cases that train (needs no torch)
    python benchmarks/hostile.py --only yaml -v  # cases whose group or name contains "yaml"
    python benchmarks/hostile.py --src DIR       # run another source tree (DIR/src on the path)
    python benchmarks/hostile.py --yaml-speed    # a large valid YAML file: old loader vs new

It prints one line per case and the counts per outcome, per group and per owner (the helper of
issue 18 whose part fixes the case).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("ok", "clear error", "unclear error", "traceback", "blow-up", "silent wrong")
OUTCOMES += ("data loss",)
MAX_MESSAGE = 300
MEMORY_LIMIT = 4 << 30
TORCH_MEMORY_LIMIT = 16 << 30
BIG = "1" + "0" * 399  # a 400-digit integer
TRILLION = "1000000000000"  # 10^12 steps: 8 TB per per-step array
ENVIRONMENT = os.environ.copy()  # of every command run (main sets the source tree to test)
COSINE = "'cosine(peak=1e-3, total=400, warmup=20)'"
ONE = "'constant(peak=1)'"  # a sweep's schedule (the grid sets the peak)

# A tiny wind-tunnel run: about 3 s on one core.
TINY_CONFIG: dict[str, Any] = {
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
    "data": {"corpus": "english"},
    "train": {
        "batch_size": 2,
        "seq_len": 16,
        "eval_interval": 2,
        "checkpoint_interval": 2,
        "progress": "off",
        "schedule": "constant(peak=1e-3)",
        "steps": 4,
    },
}
TINY = (
    "--d-model 16 --n-layers 1 --n-heads 2 --batch-size 2 --seq-len 16 --corpus english "
    "--progress off --set train.eval_interval=2 --set train.checkpoint_interval=2"
)
TRAIN = f"train --out run --schedule 'constant(peak=1e-3)' --steps 4 {TINY}"


@dataclasses.dataclass
class Result:
    """What one command did."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


Verify = Callable[[Path, Result], str | None]


@dataclasses.dataclass
class Case:
    """One hostile input: the command (a shell-quoted string, or a list of arguments), the files
    it needs, and what counts as right."""

    group: str
    name: str
    argv: str | list[str] = ""
    files: dict[str, str | bytes] = dataclasses.field(default_factory=dict)
    expect: str = "error"  # or "ok"
    verify: Verify | None = None  # a reason the result is wrong, or None
    owner: str = "hostile"
    timeout: float = 60.0
    torch: bool = False
    setup: Callable[[Path], None] | None = None
    writes: tuple[str, ...] = ()  # files the command may change (not data loss)
    runner: Callable[[Path, dict[str, str]], Result] | None = None  # instead of one command

    def __post_init__(self) -> None:
        if isinstance(self.argv, str):
            self.argv = shlex.split(self.argv)


# --- fixtures -----------------------------------------------------------------------------------


def _log(steps: np.ndarray, lr: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> str:
    area = np.cumsum(lr)
    loss = 2.5 + 1.5 * (1 + area[steps] * 50) ** -0.5 - 50.0 * (lr.max() - lr[steps])
    columns = {"step": steps, "loss": loss, "lr": lr[steps], **(extra or {})}
    lines = [",".join(columns)]
    for row in zip(*columns.values(), strict=True):
        lines.append(",".join(f"{value:.6g}" for value in row))
    return "\n".join(lines) + "\n"


def make_fixtures(folder: Path) -> None:
    """Valid inputs every case may use: logs (one with gradient norms, one logged from step 0
    where the LR is 0), a power-law and an lrlab-law fit, a spec file."""
    from lrlab.laws import get_law
    from lrlab.runs import read_run
    from lrlab.schedules import parse

    steps = np.arange(5, 400, 5)
    constant = parse("constant(peak=1e-3, warmup=20)")(np.arange(400))
    cosine = parse("cosine(peak=1e-3, total=400, warmup=20)")(np.arange(400))
    (folder / "constant.csv").write_text(_log(steps, constant))
    (folder / "cosine.csv").write_text(_log(steps, cosine))
    norms = 1.0 + 0.5 * np.exp(-steps / 100.0)
    (folder / "grad.csv").write_text(_log(steps, cosine, {"grad_norm": norms}))
    (folder / "from0.csv").write_text(_log(np.arange(0, 400, 5), cosine))
    runs = [read_run(folder / "constant.csv"), read_run(folder / "cosine.csv")]
    get_law("power").fit(runs).save(folder / "fit.json")
    get_law("lrlab").fit(runs).save(folder / "lrlab_fit.json")
    (folder / "spec.json").write_text('{"name": "cosine", "peak": 0.001, "total": 100}\n')


_DELETE = object()


def fit_with(folder: Path, changes: dict[str, Any], source: str = "fit.json") -> str:
    """A fixture fit with fields replaced (dotted keys reach into sections)."""
    data = json.loads((folder / source).read_text())
    for key, value in changes.items():
        *path, last = key.split(".")
        target = data
        for part in path:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return json.dumps(data)


def billion_laughs(levels: int = 9) -> str:
    """A YAML flow list whose last element expands to 9^levels strings: a few hundred bytes."""
    names = "abcdefghijklmnop"
    parts = ["&a [" + ",".join(['"lol"'] * 9) + "]"]
    for level in range(1, levels):
        parts.append(f"&{names[level]} [" + ",".join([f"*{names[level - 1]}"] * 9) + "]")
    return "[" + ", ".join(parts) + "]"


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _touch(path: Path) -> Path:
    path.touch()
    return path


def _mkdir(*names: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for name in names:
            (root / name).mkdir(parents=True)

    return setup


def _copy(source: str, target: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / source, root / target)

    return setup


# --- checks -------------------------------------------------------------------------------------

_ERROR = re.compile(r"^lrlab: error: \S")
_NOT_A_NUMBER = re.compile(r"(?<![\w.])(nan|-?inf)(?!\w)", re.IGNORECASE)


def no_bad_numbers(_folder: Path, result: Result) -> str | None:
    """Exit 0 must not come with NaN, inf or negative losses printed."""
    if result.returncode == 0 and _NOT_A_NUMBER.search(result.stdout):
        return "printed NaN or inf with exit 0"
    if result.returncode == 0 and re.search(r",-\d", result.stdout):
        return "printed a negative loss with exit 0"
    return None


def no_escape_codes(_folder: Path, result: Result) -> str | None:
    if "\x1b" in result.stderr or "\x1b" in result.stdout:
        return "terminal escape codes printed"
    return None


def written(name: str) -> Verify:
    def verify(folder: Path, result: Result) -> str | None:
        if result.returncode == 0 and not (folder / name).is_file():
            return f"exit 0 but {name} not written"
        return None

    return verify


def not_created(name: str) -> Verify:
    def verify(folder: Path, _result: Result) -> str | None:
        return f"created the missing folder {name}" if (folder / name).exists() else None

    return verify


def classify(case: Case, result: Result, changed: list[str], folder: Path) -> tuple[str, str]:
    """The case's outcome and a short reason."""
    if changed:
        return "data loss", "changed or removed: " + ", ".join(changed[:3])
    if result.timed_out or result.returncode in (-signal.SIGKILL, 137):
        return "blow-up", f"killed after {result.seconds:.0f} s"
    if "Traceback (most recent call last)" in result.stderr or "internal error" in result.stderr:
        last = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return "traceback", (last[-1] if last else "")[:120]
    if result.returncode < 0 or "MemoryError" in result.stderr:
        return "blow-up", f"signal {-result.returncode}"
    problem = case.verify(folder, result) if case.verify else None
    if problem:
        return "silent wrong", problem
    if result.returncode == 0:
        if case.expect == "error":
            return "silent wrong", "exit 0: " + _first_line(result.stdout or result.stderr)
        if _NOT_A_NUMBER.search(result.stdout):
            return "silent wrong", "printed NaN or inf"
        return "ok", _first_line(result.stdout)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR.match(line)]
    others = [line for line in lines if not line.startswith("lrlab: ")]
    if len(errors) == 1 and not others and len(errors[0]) <= MAX_MESSAGE:
        if case.expect == "ok":
            return "silent wrong", "refused valid input: " + errors[0][:120]
        return "clear error", errors[0][:160]
    size = len(result.stderr)
    return "unclear error", f"{len(lines)} lines, {size} characters: {_first_line(result.stderr)}"


def _first_line(text: str) -> str:
    return next((line.strip()[:120] for line in text.splitlines() if line.strip()), "")


# --- running ------------------------------------------------------------------------------------

# Runs lrlab with its address space limited (a case that would take all memory fails instead).
_LIMITED = (
    "import resource, runpy, sys; limit = int(sys.argv.pop(1)); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); sys.argv[0] = 'lrlab'; "
    "runpy.run_module('lrlab', run_name='__main__', alter_sys=True)"
)


def run_lrlab(folder: Path, argv: list[str], *, timeout: float, memory: int) -> Result:
    """``lrlab ARGV`` in `folder`, limited in time and memory."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _LIMITED, str(memory), *argv],
        cwd=folder,
        env=ENVIRONMENT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a group of its own, so that a timeout kills its children too
    )
    timed_out = False
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        timed_out = True
    return Result(
        process.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.perf_counter() - began,
        timed_out,
    )


def _snapshot(folder: Path) -> dict[str, str]:
    """Digest of every file under `folder`, by relative path."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            name = str(path.relative_to(folder))
            try:
                found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                found[name] = "unreadable"
    return found


def _outside(top: Path, folder: Path) -> set[str]:
    """Paths under `top` outside the case's folder (a write that escaped it)."""
    return {str(path) for path in top.rglob("*") if path != folder and folder not in path.parents}


def run_case(case: Case, top: Path, fixtures: Path) -> tuple[str, str, float]:
    folder = top / "cases" / re.sub(r"\W+", "-", f"{case.group}-{case.name}")
    shutil.copytree(fixtures, folder)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.setup:
        case.setup(folder)
    before, outside = _snapshot(folder), _outside(top, folder)
    if case.runner:
        result = case.runner(folder, ENVIRONMENT)
    else:
        memory = TORCH_MEMORY_LIMIT if case.torch else MEMORY_LIMIT
        assert isinstance(case.argv, list)
        result = run_lrlab(folder, case.argv, timeout=case.timeout, memory=memory)
    after = _snapshot(folder)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    changed = [  # a folder in `writes` allows the files in it (pruned checkpoints)
        name
        for name in changed
        if name not in case.writes and not any(name.startswith(f"{w}/") for w in case.writes)
    ]
    changed += [f"outside: {name}" for name in sorted(_outside(top, folder) - outside)]
    outcome, reason = classify(case, result, changed, folder)
    shutil.rmtree(folder, ignore_errors=True)
    for path in _outside(top, folder) - outside:  # an escaped write: clean up for the next case
        shutil.rmtree(path, ignore_errors=True) if Path(path).is_dir() else Path(path).unlink()
    return outcome, reason, result.seconds


# --- cases: YAML and JSON -----------------------------------------------------------------------


def yaml_cases() -> list[Case]:
    bomb = billion_laughs()
    show = "schedule show b.yaml --steps 5"
    predict = "predict b.yaml --schedule 'constant(peak=1e-3)' --steps 10"
    spec_file = "schedule show s.json --steps 5"
    spec_yaml = "schedule show s.yaml --steps 5"
    fit_like = '{"format": "lrlab-law-fit", "law": "power", "config": {"fixed": '
    nested = "scale(schedule=" * 150 + "constant(peak=1e-3)" + ", factor=1)" * 150
    return [
        Case("yaml", "billion laughs: spec", show, {"b.yaml": f"name: constant\npeak: {bomb}\n"}),
        Case("yaml", "billion laughs: fit file", predict, {"b.yaml": f"format: {bomb}\n"}),
        Case(
            "yaml",
            "billion laughs: fit params",
            predict,
            {"b.yaml": "format: lrlab-law-fit\nlaw: power\nconfig: {}\nparams: " + bomb},
        ),
        Case(
            "yaml",
            "billion laughs: train config",
            "train --config b.yaml --out run",
            {"b.yaml": f"train:\n  steps: {bomb}\n"},
            torch=True,
        ),
        Case(
            "yaml",
            "billion laughs: sweep config",
            "sweep --config b.yaml",
            {"b.yaml": f"out: s\nbase: {{}}\ngrid: {{peak: {bomb}}}\n"},
            torch=True,
        ),
        Case(
            "yaml",
            "billion laughs: study config",
            "study --config b.yaml --out st",
            {"b.yaml": f"budget: {bomb}\n"},
        ),
        Case(
            "yaml",
            "billion laughs: --set value",
            ["train", "--out", "run", "--set", f"train.steps={bomb}"],
            torch=True,
        ),
        Case(
            "yaml",
            "billion laughs, 12 levels",
            show,
            {"b.yaml": f"name: constant\npeak: {billion_laughs(12)}\n"},
        ),
        Case(
            "yaml",
            "deep JSON schedule sidecar",
            "fit constant.csv --law power",
            {"constant.schedule.json": '{"name": "constant", "peak": ' + deep(100_000) + "}"},
        ),
        Case(
            "yaml",
            "deep JSON spec file",
            spec_file,
            {"s.json": '{"name": "constant", "peak": ' + deep(100_000) + "}"},
        ),
        Case(
            "yaml",
            "deep JSON fit file",
            predict.replace("b.yaml", "d.json"),
            {"d.json": '{"a": ' + deep(50_000) + "}"},
        ),
        Case(
            "yaml",
            "deep JSON fit file (900 levels)",
            predict.replace("b.yaml", "d.json"),
            {"d.json": fit_like + deep(900) + "}}"},
        ),
        Case("yaml", "deep YAML flow", show, {"b.yaml": f"name: constant\npeak: {deep(50_000)}\n"}),
        Case(
            "yaml",
            "deep YAML block",
            show,
            {
                "b.yaml": "name: constant\npeak:\n"
                + "".join(" " * i + "- \n" for i in range(1, 3000))
                + " " * 3000
                + "- 1\n"
            },
        ),
        Case(
            "yaml",
            "deep JSON inline spec",
            ["schedule", "show", '{"name": "constant", "peak": ' + deep(20_000) + "}"],
        ),
        Case(
            "yaml",
            "deep compact spec",
            ["schedule", "show", f"constant(peak={deep(5000)})", "--steps", "5"],
        ),
        Case(
            "yaml",
            "nested schedules 150 deep (compact)",
            ["schedule", "show", nested, "--steps", "5"],
        ),
        Case(
            "yaml",
            "nested schedules 2000 deep (JSON file)",
            spec_file,
            {
                "s.json": '{"name": "scale", "factor": 1, "schedule": ' * 2000
                + '{"name": "constant", "peak": 0.001}'
                + "}" * 2000
            },
        ),
        Case(
            "yaml",
            "2 GiB sparse spec file",
            show,
            setup=lambda root: os.truncate(_touch(root / "b.yaml"), 2 << 30),
        ),
        Case("yaml", "/dev/zero as fit file", predict.replace("b.yaml", "/dev/zero"), timeout=30),
        Case("yaml", "/dev/zero as study config", "study --config /dev/zero --out st", timeout=30),
        Case(
            "yaml",
            "1 MB string echoed",
            spec_file,
            {"s.json": '{"name": "constant", "peak": "' + "x" * 1_000_000 + '"}'},
        ),
        Case(
            "yaml",
            "1 MB unknown key echoed",
            spec_file,
            {"s.json": '{"name": "constant", "' + "k" * 1_000_000 + '": 1}'},
        ),
        Case(
            "yaml",
            "1 MB schedule name echoed",
            spec_file,
            {"s.json": '{"name": "' + "n" * 1_000_000 + '"}'},
        ),
        Case(
            "yaml",
            "100k-item list echoed",
            spec_file,
            {"s.json": '{"name": "constant", "peak": [' + ",".join(["1"] * 100_000) + "]}"},
        ),
        Case("yaml", "multi-line string", spec_yaml, {"s.yaml": 'name: constant\npeak: "a\\nb"\n'}),
        Case(
            "yaml",
            "python tag",
            spec_yaml,
            {"s.yaml": "name: !!python/object/apply:os.system ['echo pwned']\n"},
        ),
        Case("yaml", "non-UTF-8 spec", spec_yaml, {"s.yaml": b"name: constant\npeak: \xff\xfe\n"}),
        Case("yaml", "syntax error", spec_yaml, {"s.yaml": "name: constant\n  peak: [1,\n"}),
        Case(
            "yaml",
            "duplicate key in YAML",
            spec_yaml,
            {"s.yaml": "name: constant\npeak: 0.001\npeak: 0.1\n"},
        ),
        Case(
            "yaml",
            "duplicate key in JSON",
            spec_file,
            {"s.json": '{"name": "constant", "peak": 0.001, "peak": 0.1}'},
        ),
        Case(
            "yaml",
            "400-digit integer",
            spec_file,
            {"s.json": '{"name": "cosine", "peak": 1, "total": ' + BIG + "}"},
        ),
        Case(
            "yaml",
            "5000-digit integer",
            spec_file,
            {"s.json": '{"name": "cosine", "peak": 1, "total": ' + "9" * 5000 + "}"},
        ),
        Case("yaml", "1e999", spec_file, {"s.json": '{"name": "constant", "peak": 1e999}'}),
        Case("yaml", "spec file a list", spec_file, {"s.json": "[1, 2, 3]"}),
        Case("yaml", "spec file a folder", spec_file, setup=_mkdir("s.json")),
        Case("yaml", "empty spec file", spec_yaml, {"s.yaml": ""}),
    ]


# --- cases: fit files ---------------------------------------------------------------------------


def fit_file_cases() -> list[Case]:
    predict = f"predict f.json --schedule {COSINE} --steps 400"

    def case(name: str, changes: dict[str, Any], source: str = "fit.json", **kwargs: Any) -> Case:
        def setup(folder: Path) -> None:
            (folder / "f.json").write_text(fit_with(folder, changes, source))

        kwargs.setdefault("argv", predict)
        return Case("fit-file", name, setup=setup, verify=no_bad_numbers, **kwargs)

    nan, inf = float("nan"), float("inf")
    optimize = "optimize f.json --budget 200 --family cosine"
    return [
        case("NaN parameter", {"params.L0": nan}),
        case("infinite parameter", {"params.A": inf}),
        case("negative amplitude", {"params.A": -5.0}),
        case("negative L0", {"params.L0": -3.0}),
        case("alpha out of range", {"params.alpha": 1e300}),
        case("parameter as text", {"params.alpha": "abc"}),
        case("parameter missing", {"params.alpha": _DELETE}),
        case("params a list", {"params": [1, 2, 3]}),
        case("format_version 99", {"format_version": 99}),
        case("format_version true", {"format_version": True}),
        case("format_version '2'", {"format_version": "2"}),
        case("format_version 2.5", {"format_version": 2.5}),
        case("band_scale 0", {"band_scale": 0.0}),
        case("band_scale negative", {"band_scale": -1.0}),
        case("band_scale NaN", {"band_scale": nan}),
        case("noise_sd negative", {"noise_sd": -0.5}),
        case("noise_sd NaN", {"noise_sd": nan}),
        case("replicates with NaN", {"replicates": [[nan, 1.0, 0.5], [1.0, 1.0, 0.5]]}),
        case("replicates with inf", {"replicates": [[inf, 1.0, 0.5], [1.0, 1.0, 0.5]]}),
        case("replicates ragged", {"replicates": [[1.0, 0.5], [1.0]]}),
        case("replicates out of range", {"replicates": [[1.0, -50.0, 0.5], [1.0, 1.0, 0.5]]}),
        case("covariance not numbers", {"covariance": "x"}),
        case("param_errors NaN", {"param_errors.A": nan}),
        case("law a list", {"law": ["power"]}),
        case("law unknown", {"law": "nope"}),
        case("config unknown field", {"config.nope": 1}),
        case("config band_level 2", {"config.band_level": 2}),
        case("fit section a list", {"fit": [1, 2]}),
        case("fit peak NaN", {"fit.peak": nan}),
        case("lr_ref 0 (lrlab law)", {"learned.lr_ref": 0.0}, "lrlab_fit.json"),
        case("lr_ref NaN (lrlab law)", {"learned.lr_ref": nan}, "lrlab_fit.json"),
        case("p out of range (lrlab law)", {"params.p": -7.0}, "lrlab_fit.json"),
        case("400-digit parameter", {"params.L0": 10**400}),
        case("optimize, fit peak NaN", {"fit.peak": nan}, argv=optimize),
        case("optimize, fit warmup 2.5", {"fit.warmup": 2.5}, argv=optimize),
        case("optimize, fit warmup -50", {"fit.warmup": -50}, argv=optimize),
        case("evaluate, NaN alpha", {"params.alpha": nan}, argv="evaluate f.json constant.csv"),
        Case("fit-file", "fit file a log", "predict constant.csv --schedule x --steps 10"),
        Case("fit-file", "fit file missing", "predict nope.json --schedule x --steps 10"),
    ]


# --- cases: arguments ---------------------------------------------------------------------------


def argument_cases() -> list[Case]:
    show = f"schedule show {COSINE}"
    predict = f"predict fit.json --schedule {COSINE}"
    optimize = "optimize fit.json --budget 200"
    refine = "refine grad.csv -o r.json"
    plan = f"plan-continual fit.json --base {COSINE}"
    staged = f"{plan} --base-steps 400 --stage-steps 100"
    study = "study --runs constant.csv cosine.csv --out st --budget"
    g0 = "step,loss,lr,grad_norm\n1,3,0.001,1\n2,2.9,0.001,0\n3,2.8,0.001,1\n"

    def case(name: str, argv: str, **kwargs: Any) -> Case:
        return Case("args", name, argv, **kwargs)

    return [
        case("schedule show --steps 400 digits", f"{show} --steps {BIG}"),
        case("schedule show --steps 1e12", f"{show} --steps {TRILLION}"),
        case("schedule show --every 0", f"{show} --steps 10 --every 0"),
        case("schedule show --steps -1", f"{show} --steps -1"),
        case("schedule compare --steps 400 digits", f"schedule compare {COSINE} --steps {BIG}"),
        case("predict --steps 400 digits", f"{predict} --steps {BIG}"),
        case("predict --steps 1e12", f"{predict} --steps {TRILLION}"),
        case("predict --every 0", f"{predict} --steps 400 --every 0"),
        case("predict --every -5", f"{predict} --steps 400 --every -5"),
        case("predict --every 400 digits", f"{predict} --steps 400 --every {BIG}"),
        # Steps 0 and 399: the last step is always predicted (issue 19), whatever the stride.
        case(
            "predict --every beyond --steps",
            f"{predict} --steps 400 --every 500",
            expect="ok",
            verify=no_bad_numbers,
        ),
        case("predict --level 1.5", f"{predict} --steps 400 --level 1.5"),
        case("predict --level nan", f"{predict} --steps 400 --level nan"),
        case(
            "predict LR 1e300",
            "predict fit.json --schedule 'constant(peak=1e300)' --steps 100",
            verify=no_bad_numbers,
        ),
        case(
            "predict LR 0 at step 0",
            "predict fit.json from0.csv",
            expect="ok",
            verify=no_bad_numbers,
        ),
        case(
            "evaluate a single-row log",
            "evaluate fit.json one.csv",
            files={"one.csv": "step,loss,lr\n10,3.0,0.001\n"},
            expect="ok",
            verify=no_bad_numbers,
        ),
        case(
            "evaluate --json, a single-row log",
            "evaluate fit.json one.csv --json",
            files={"one.csv": "step,loss,lr\n10,3.0,0.001\n"},
            expect="ok",
            verify=no_bad_numbers,
        ),
        case(
            "fit quality, LR 0 at step 0",
            "fit from0.csv cosine.csv --law power --no-bands",
            expect="ok",
            verify=no_bad_numbers,
        ),
        case("optimize --budget 0", "optimize fit.json --budget 0"),
        case("optimize --budget -5", "optimize fit.json --budget -5"),
        case("optimize --budget 400 digits", f"optimize fit.json --budget {BIG}"),
        case("optimize --budget 1e12", f"optimize fit.json --budget {TRILLION}"),
        case("optimize --knots 0", f"{optimize} --knots 0"),
        case("optimize --knots -3", f"{optimize} --knots -3"),
        case("optimize --smoothness -1", f"{optimize} --smoothness -1"),
        case("optimize --smoothness nan", f"{optimize} --smoothness nan"),
        case("optimize --smoothness inf", f"{optimize} --smoothness inf"),
        case("optimize --peak nan", f"{optimize} --family cosine --peak nan"),
        case("optimize --peak inf", f"{optimize} --family cosine --peak inf"),
        case("optimize --peak -1", f"{optimize} --peak -1"),
        case("optimize --peak 1e300", f"{optimize} --family cosine --peak 1e300"),
        case("optimize --warmup -5", f"{optimize} --warmup -5"),
        case("optimize --warmup above budget", f"{optimize} --warmup 500"),
        case("optimize --budgets 0,100", f"{optimize} --family cosine --budgets 0,100"),
        case("optimize --budgets -5", f"{optimize} --family cosine --budgets -5"),
        case("optimize --budgets 400 digits", f"{optimize} --family cosine --budgets {BIG}"),
        case("optimize --budgets words", f"{optimize} --budgets a,b"),
        case("refine --peak -1", f"{refine} --peak -1"),
        case("refine --peak 0", f"{refine} --peak 0"),
        case("refine --peak nan", f"{refine} --peak nan"),
        case("refine --smoothing 5", f"{refine} --smoothing 5"),
        case("refine, no grad_norm column", "refine constant.csv -o r.json"),
        case("refine, zero gradient norm", "refine g0.csv -o r.json", files={"g0.csv": g0}),
        case("plan-continual --base-steps -5", f"{plan} --base-steps -5 --stage-steps 100"),
        case("plan-continual --base-steps 0", f"{plan} --base-steps 0 --stage-steps 100"),
        case("plan-continual --base-steps big", f"{plan} --base-steps {BIG} --stage-steps 100"),
        case("plan-continual --stage-steps 0", f"{plan} --base-steps 400 --stage-steps 0"),
        case("plan-continual --stage-steps -5", f"{plan} --base-steps 400 --stage-steps -5"),
        case(
            "plan-continual --stage-steps 1e12", f"{plan} --base-steps 1 --stage-steps {TRILLION}"
        ),
        case("plan-continual --warmup -1", f"{staged} --warmup -1"),
        case("plan-continual --warmup = stage", f"{staged} --warmup 100"),
        case("plan-continual --peak nan", f"{staged} --peak nan"),
        case("fit --schedule {}", "fit constant.csv --schedule {}"),
        case("fit --schedule LR 1e300", "fit constant.csv --schedule 'constant(peak=1e300)'"),
        case("fit --columns nonsense", "fit constant.csv --columns ==,"),
        case("fit --law unknown", "fit constant.csv --law nope"),
        case("schedules, 100 kB name", ["schedules", "x" * 100_000]),
        case(
            "unknown schedule, 100 kB", ["schedule", "show", "n" * 100_000 + "()", "--steps", "5"]
        ),
        case("study --budget 400 digits", f"{study} {BIG}"),
        case("study --budget 0", f"{study} 0"),
        case("study --budget 1e12", f"{study} {TRILLION}", timeout=60),
        case("study --peak nan", f"{study} 400 --peak nan"),
        case("study --warmup -5", f"{study} 400 --warmup -5"),
    ]


# --- cases: schedules ---------------------------------------------------------------------------


def schedule_cases() -> list[Case]:
    def case(name: str, spec: str, **kwargs: Any) -> Case:
        return Case("schedule", name, ["schedule", "show", spec, "--steps", "20"], **kwargs)

    two = "constant(peak=1e-3), constant(peak=1e-4)"
    return [
        case("join boundary 1e20", f"join(schedules=[{two}], boundaries=[1e20])"),
        case("join boundary 400 digits", f"join(schedules=[{two}], boundaries=[{BIG}])"),
        case("join boundary 2^63", f"join(schedules=[{two}], boundaries=[{2**63}])"),
        case(
            "scale factor overflows",
            "scale(schedule=constant(peak=1e300), factor=1e300)",
            verify=no_bad_numbers,
        ),
        case(
            "nested scales overflow",
            "scale(schedule=scale(schedule=constant(peak=1e-3), factor=1e200), factor=1e200)",
            verify=no_bad_numbers,
        ),
        case("peak 1e400", "constant(peak=1e400)"),
        case("total 400 digits", f"cosine(peak=1e-3, total={BIG})"),
        case("warmup 1e20", "cosine(peak=1e-3, total=1e21, warmup=1e20)"),
        case("table value 400 digits", f"table(values=[1, {BIG}])"),
        case("piecewise step 400 digits", f"piecewise_linear(points=[[0, 1], [{BIG}, 0]])"),
        case("empty spec {}", "{}"),
        case("spec a JSON list", "[1, 2]"),
        case("positional argument", "cosine(1e-3)"),
        case("attribute access", "os.system('x')"),
        case("lambda", "cosine(peak=lambda: 1)"),
        case("ANSI codes in a spec", "\x1b[31mred\x1b[0m(a=1)", verify=no_escape_codes),
        case("ANSI codes in a file name", "\x1b[2Jx.json", verify=no_escape_codes),
        case("newline in a file name", "a\nb.json"),
        Case("schedule", "output to a closed pipe", expect="ok", runner=_closed_pipe),
    ]


def _closed_pipe(folder: Path, env: dict[str, str]) -> Result:
    """``lrlab schedule show ... | head -1``: the reader leaves early."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "lrlab", "schedule", "show", "constant(peak=1e-3)"]
    producer = subprocess.Popen(
        [*command, "--steps", "1000000"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None
    producer.stdout.readline()
    producer.stdout.close()  # the reader is gone
    try:
        _, err = producer.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        producer.kill()
        _, err = producer.communicate()
    # Any exit status will do (a shell reports 141 for a tool SIGPIPE stopped); no traceback.
    return Result(0, "", err.decode("utf-8", "replace"), time.perf_counter() - began)


# --- cases: outputs -----------------------------------------------------------------------------


def output_cases() -> list[Case]:
    fit = "fit constant.csv cosine.csv --law power --no-bands"
    predict = "predict fit.json constant.csv"
    optimize = "optimize fit.json --budget 200 --family cosine"
    plan = "plan-continual fit.json --base 'cosine(peak=1e-3, total=400)' --base-steps 400"
    plan += " --stage-steps 100"
    show = "schedule show 'constant(peak=1e-3)' --steps 10"

    def case(name: str, argv: str, **kwargs: Any) -> Case:
        return Case("output", name, argv, **kwargs)

    def fifo(root: Path) -> None:
        os.mkfifo(root / "pipe.csv")

    return [
        case("fit -o a folder", f"{fit} -o out", setup=_mkdir("out")),
        case("fit -o in missing folders", f"{fit} -o a/b/c/f.json", verify=not_created("a")),
        case("fit -o under a file", f"{fit} -o constant.csv/x.json"),
        case("fit -o where nothing is written", f"{fit} -o /proc/x.json"),
        case("fit -o its own log", f"{fit} -o constant.csv"),
        case(
            "fit --joint -o a file",
            "fit --joint a/constant.csv b/cosine.csv --law power --no-bands -o constant.csv",
            setup=_two_groups,
        ),
        case("predict -o a folder", f"{predict} -o out", setup=_mkdir("out")),
        case("predict -o the fit", f"{predict} -o fit.json"),
        case("predict -o its own log", f"{predict} -o constant.csv"),
        case("predict -o a named pipe", f"{predict} -o pipe.csv", setup=fifo, timeout=20),
        case("predict -o and --plot alike", f"{predict} -o p.png --plot p.png"),
        case("predict --plot a folder", f"{predict} --plot out", setup=_mkdir("out")),
        case("predict --plot over the log", f"{predict} --plot constant.csv"),
        case(
            "predict --plot, missing folders",
            f"{predict} --plot x/y/p.png",
            verify=not_created("x"),
        ),
        case(
            "evaluate --plot, missing folders",
            "evaluate fit.json constant.csv --plot x/y/p.png",
            verify=not_created("x"),
        ),
        case("optimize -o a folder", f"{optimize} -o out", setup=_mkdir("out")),
        case("optimize -o the fit", f"{optimize} -o fit.json"),
        case(
            "optimize --plot, missing folders",
            f"{optimize} --plot x/y/p.png",
            verify=not_created("x"),
        ),
        case("refine -o its own log", "refine grad.csv -o grad.csv"),
        case("refine -o a folder", "refine grad.csv -o out", setup=_mkdir("out")),
        case("plan-continual -o a folder", f"{plan} -o out", setup=_mkdir("out")),
        case("plan-continual -o the fit", f"{plan} -o fit.json"),
        case("schedule show --plot a folder", f"{show} --plot out", setup=_mkdir("out")),
        case(
            "schedule show --plot its spec", "schedule show spec.json --steps 10 --plot spec.json"
        ),
        case(
            "schedule compare --plot, missing folders",
            "schedule compare 'constant(peak=1e-3)' --steps 10 --plot x/y/p.png",
            verify=not_created("x"),
        ),
    ]


# --- cases: plot labels -------------------------------------------------------------------------


def _two_groups(root: Path) -> None:
    _copy("constant.csv", "a/constant.csv")(root)
    _copy("cosine.csv", "b/cosine.csv")(root)


def plot_cases() -> list[Case]:
    math = "$\\frac{a$.csv"
    quoted = shlex.quote(math)

    def case(name: str, argv: str, verify: Verify, **kwargs: Any) -> Case:
        return Case("plot", name, argv, expect="ok", verify=verify, **kwargs)

    return [
        case(
            "math text in a run name (predict)",
            f"predict fit.json {quoted} --plot p.png",
            written("p.png"),
            setup=_copy("constant.csv", math),
        ),
        case(
            "math text in a run name (evaluate)",
            f"evaluate fit.json {quoted} --plot p.png",
            written("p.png"),
            setup=_copy("constant.csv", math),
        ),
        case(
            "a dollar pair in a run name",
            "evaluate fit.json '$x^2$.csv' --plot p.png",
            written("p.png"),
            setup=_copy("constant.csv", "$x^2$.csv"),
        ),
        case(
            "math text in study run names",
            f"study --runs {quoted} cosine.csv --budget 400 --out st",
            written("st/report.html"),
            setup=_copy("constant.csv", math),
            timeout=300,
        ),
    ]


# --- cases: logs (the log readers, helper "longlogs") -------------------------------------------


def log_cases() -> list[Case]:
    def case(name: str, content: str | bytes, suffix: str = ".csv", **kwargs: Any) -> Case:
        file = f"log{suffix}"
        argv = f"fit {file} --law power --no-bands"
        return Case("logs", name, argv, {file: content}, owner="longlogs", **kwargs)

    header = "step,loss,lr\n"
    rows = header + "".join(f"{s},{3 - s / 1000:.4f},0.001\n" for s in range(1, 200))
    ok = {"expect": "ok", "verify": no_bad_numbers}
    return [
        case("non-UTF-8 log", b"step,loss,lr\n1,3.0,0.001\n2,2\xff.9,0.001\n"),
        case(
            "duplicate column names",
            "step,loss,loss,lr\n" + "".join(f"{s},3,2,0.001\n" for s in range(1, 50)),
        ),
        case("single-row log", header + "1,3.0,0.001\n"),
        case("header only", header),
        case("empty file", ""),
        case("row at step 1e7", rows + "10000000,2.5,0.001\n", **ok),
        case("row at step 1e8", rows + "100000000,2.5,0.001\n"),
        case("row at step 1e15", rows + "1000000000000000,2.5,0.001\n"),
        case("step of 400 digits", rows + BIG + ",2.5,0.001\n"),
        case("zero loss", rows + "300,0,0.001\n"),
        case("negative loss", rows + "300,-1,0.001\n"),
        case("NaN loss", rows + "300,nan,0.001\n", **ok),
        case("infinite loss", rows + "300,inf,0.001\n", **ok),  # dropped, like NaN, warned
        case("LR 1e300", rows.replace("0.001", "1e300")),
        case("negative LR", rows + "300,2.5,-0.001\n"),
        case("negative step", header + "-5,3,0.001\n" + rows[len(header) :]),
        case("duplicate steps", rows + rows[len(header) :], **ok),
        case("deeply nested JSONL", '{"step": 1, "loss": ' + deep(100_000) + "}\n", ".jsonl"),
        case("JSONL line not an object", '[1, 2]\n{"step": 1, "loss": 3}\n', ".jsonl"),
        case("ragged CSV rows", header + "1,3\n2,2.9,0.001,7\n"),
        case("TSV with NUL bytes", b"step\tloss\n1\t3\x00\n", ".tsv"),
        case("ANSI codes in the header", "\x1b[2Jstep,\x1b[31mloss\n1,3\n", verify=no_escape_codes),
        Case(
            "logs",
            "study --runs, non-UTF-8 log",
            "study --runs bad.csv cosine.csv --budget 400 --out st",
            {"bad.csv": b"step,loss,lr\n1,3.0,0.001\n2,2\xff.9,0.001\n"},
            owner="longlogs",
        ),
        Case(
            "logs",
            "log an empty folder",
            "fit empty --law power",
            setup=_mkdir("empty"),
            owner="longlogs",
        ),
    ]


# --- cases: wind tunnel and study (helper "safety", and giant arguments) ------------------------


def _trained(root: Path) -> None:
    command = [sys.executable, "-m", "lrlab", *shlex.split(TRAIN)]
    subprocess.run(command, cwd=root, env=ENVIRONMENT, check=True, capture_output=True)


def _damaged(name: str, content: str | bytes) -> Callable[[Path], None]:
    """A tiny run, marked interrupted (so that a resume reads it all), with one file replaced."""

    def setup(root: Path) -> None:
        _trained(root)
        _interrupted(root)
        path = root / "run" / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def _interrupted(root: Path) -> None:
    record = json.loads((root / "run" / "record.json").read_text())
    record["status"] = "interrupted"
    (root / "run" / "record.json").write_text(json.dumps(record))


def _checkpoints(change: Callable[[dict[str, Any], Any], None]) -> Callable[[Path], None]:
    """A finished tiny run whose checkpoints `change` alters, marked interrupted (so that a
    resume loads one)."""

    def setup(root: Path) -> None:
        import torch

        _trained(root)
        for file in sorted((root / "run" / "checkpoints").glob("*.pt")):
            state = torch.load(file, weights_only=False)
            change(state, torch)
            torch.save(state, file)
        _interrupted(root)

    return setup


def _drop_keys(state: dict[str, Any], _torch: Any) -> None:
    state.pop("model", None)
    state.pop("optimizer", None)


def _negative_step(state: dict[str, Any], _torch: Any) -> None:
    state["step"] = -5


def _wrong_shape(state: dict[str, Any], torch: Any) -> None:
    first = next(iter(state["model"]))
    state["model"][first] = torch.zeros(3, 3)


def _bad_rng(state: dict[str, Any], _torch: Any) -> None:
    state["rng"] = {"torch": "garbage"}


_RUN_FILES = tuple(
    f"run/{name}"
    for name in (
        "record.json",
        "train.csv",
        "eval.csv",
        "config.json",
        "train.csv.schedule.json",
        "eval.csv.schedule.json",
    )
)


def _study_config(fit_schedules: dict[str, str]) -> dict[str, str]:
    data = {
        "budget": 60,
        "peak": 1.0e-3,
        "warmup": 5,
        "fit_schedules": fit_schedules,
        "verify": ["recommended"],
        "tunnel": {key: value for key, value in TINY_CONFIG.items() if key != "train"},
    }
    return {"st.yaml": json.dumps(data)}


def _sweep(grid: str, steps: int = 4) -> dict[str, str]:
    base = json.loads(json.dumps(TINY_CONFIG))
    base["train"]["steps"] = steps
    return {"s.yaml": f"base: {json.dumps(base)}\n{grid}\n"}


def _extended_or_refused(folder: Path, result: Result) -> str | None:
    if result.returncode != 0:
        return None  # refused: right if the message is clear
    steps = json.loads((folder / "run" / "record.json").read_text()).get("steps_done")
    return None if steps == 8 else f"exit 0 but the run has {steps} steps, not the 8 asked"


def _two_sweep_runs(folder: Path, result: Result) -> str | None:
    runs = [path for path in (folder / "sw" / "runs").glob("*") if (path / "record.json").exists()]
    if result.returncode == 0 and len(runs) != 2:
        return f"two grid points trained into {len(runs)} run folder(s)"
    return None


def _two_trainers(folder: Path, env: dict[str, str]) -> Result:
    """Two ``lrlab train`` on one --out at once: the second must be refused."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "lrlab", *shlex.split(TRAIN)]
    first = subprocess.Popen(
        [*command, "--steps", "60"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(4.0)  # the first is training by now (imports take about 2 s)
    second = subprocess.run(
        [*command, "--steps", "30"], cwd=folder, env=env, capture_output=True, check=False
    )
    first.communicate(timeout=120)
    return Result(
        second.returncode,
        second.stdout.decode("utf-8", "replace"),
        second.stderr.decode("utf-8", "replace"),
        time.perf_counter() - began,
    )


def _interrupted_sweep(folder: Path, env: dict[str, str]) -> Result:
    """Ctrl-C on a running sweep (SIGINT to its process group, as a terminal sends it): one
    clear line, no worker tracebacks."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "sweep", "--config", "s.yaml", "--out", "sw"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(8.0)  # the workers are training (5000 steps take minutes)
    os.killpg(process.pid, signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return Result(-9, "", err.decode("utf-8", "replace"), time.perf_counter() - began, True)
    # "lrlab: interrupted" is the one line an interrupt prints: count it as the clear error.
    # What the sweep printed before it is its progress (a line every few seconds), not part of
    # what the interrupt says; a traceback anywhere still counts.
    stderr = err.decode("utf-8", "replace")
    if "Traceback" not in stderr and "lrlab: interrupted" in stderr:
        stderr = stderr[stderr.index("lrlab: interrupted") :]
    stderr = stderr.replace("lrlab: interrupted", "lrlab: error: stop")
    return Result(
        process.returncode, out.decode("utf-8", "replace"), stderr, time.perf_counter() - began
    )


def tunnel_cases() -> list[Case]:
    resume = "train --out run --resume"
    study = "study --config st.yaml --out st"
    placeholder = "constant(peak={peak})"
    cosine = "cosine(peak={peak}, total={budget})"

    def case(name: str, argv: str = "", **kwargs: Any) -> Case:
        kwargs.setdefault("owner", "safety")
        kwargs.setdefault("timeout", 120)
        return Case("tunnel", name, argv, torch=True, **kwargs)

    return [
        case("train --steps 400 digits", f"{TRAIN} --steps {BIG}", owner="hostile"),
        case("train --steps 1e12", f"{TRAIN} --steps {TRILLION}", owner="hostile", timeout=60),
        case("train --batch-size 1e9", f"{TRAIN} --batch-size 1000000000", owner="hostile"),
        case("train --seq-len 1e9", f"{TRAIN} --seq-len 1000000000", owner="hostile"),
        case("train --d-model 1e7", f"{TRAIN} --d-model 10000000 --n-heads 1", owner="hostile"),
        case("train --out a file", f"{TRAIN} --out constant.csv"),
        case(
            "config: steps text",
            "train --config c.yaml --out run",
            files={"c.yaml": "train: {steps: many}\n"},
        ),
        case(
            "config: section a list",
            "train --config c.yaml --out run",
            files={"c.yaml": "model: [1, 2]\n"},
        ),
        case(
            "config: schedule a number",
            "train --config c.yaml --out run",
            files={"c.yaml": "train: {schedule: 5}\n"},
        ),
        case("config: a list", "train --config c.yaml --out run", files={"c.yaml": "- 1\n"}),
        case(
            "resume, damaged train.csv",
            resume,
            writes=("run/train.csv",),
            setup=_damaged("train.csv", b"step,loss\n1,\xff\xfe\n\x00\x00"),
        ),
        case(
            "resume, truncated record.json",
            resume,
            setup=_damaged("record.json", '{"status": "interr'),
        ),
        case("checkpoint missing keys", resume, setup=_checkpoints(_drop_keys)),
        case("checkpoint negative step", resume, setup=_checkpoints(_negative_step)),
        case("checkpoint shape mismatch", resume, setup=_checkpoints(_wrong_shape)),
        case("checkpoint bad RNG state", resume, setup=_checkpoints(_bad_rng)),
        case(
            "resume with --steps changed",
            f"{resume} --steps 8",
            setup=_trained,
            expect="ok",
            verify=_extended_or_refused,
            writes=_RUN_FILES + ("run/checkpoints",),
        ),
        case(
            "resume, another --schedule",
            f"{resume} --schedule 'constant(peak=1e-2)'",
            setup=_trained,
        ),
        case("two trainers on one folder", runner=_two_trainers),
        case("sweep: grid a list", "sweep --config s.yaml --out sw", files=_sweep("grid: [1]")),
        case(
            "sweep: colliding names",
            "sweep --config s.yaml --out sw --workers 1",
            files=_sweep(f"grid: {{peak: [1.0e-3, 1.0004e-3], schedules: [{ONE}]}}"),
            expect="ok",
            verify=_two_sweep_runs,
            timeout=180,
        ),
        case(
            "sweep --workers 0",
            "sweep --config s.yaml --out sw --workers 0",
            files=_sweep(f"grid: {{peak: [1.0e-3], schedules: [{ONE}]}}"),
        ),
        case(
            "sweep Ctrl-C",
            runner=_interrupted_sweep,
            files=_sweep(f"grid: {{peak: [1.0e-3, 2.0e-3], schedules: [{ONE}]}}", steps=5000),
        ),
        case(
            "study: key with ../",
            study,
            timeout=300,
            expect="ok",  # the key becomes a safe name inside --out: no write outside the case
            verify=written("st/report.html"),
            files=_study_config({"../../../escape": placeholder, "cosine": cosine}),
        ),
        case(
            "study: key with markup",
            study,
            timeout=300,
            expect="ok",
            verify=written("st/report.html"),
            files=_study_config({"<b>x</b>/y": placeholder, "cosine": cosine}),
        ),
        case(
            "study --out a file", "study --runs constant.csv cosine.csv --budget 400 --out fit.json"
        ),
        case(
            "study: {} placeholder",
            study,
            owner="hostile",
            files=_study_config({"a": "constant(peak={})", "b": placeholder}),
        ),
        case(
            "study: attribute placeholder",
            study,
            owner="hostile",
            files=_study_config({"a": "constant(peak={peak.real.x})", "b": placeholder}),
        ),
        case(
            "study: index placeholder",
            study,
            owner="hostile",
            files=_study_config({"a": "constant(peak={peak[0]})", "b": placeholder}),
        ),
        case(
            "study: JSON spec string",
            study,
            owner="hostile",
            timeout=300,
            expect="ok",  # a JSON spec keeps its braces: only {name} of a known name is filled
            verify=written("st/report.html"),
            files=_study_config({"a": '{"name": "constant", "peak": 0.001}', "b": placeholder}),
        ),
    ]


def all_cases(skip_tunnel: bool) -> list[Case]:
    cases = [
        *yaml_cases(),
        *fit_file_cases(),
        *argument_cases(),
        *schedule_cases(),
        *output_cases(),
        *plot_cases(),
        *log_cases(),
    ]
    if not skip_tunnel:
        cases += tunnel_cases()
    return [case for case in cases if not (skip_tunnel and case.torch)]


# --- main ---------------------------------------------------------------------------------------


def yaml_speed() -> None:
    """The cost of a large valid YAML file: a 200,000-value table spec read by PyYAML's
    pure-Python safe loader (what lrlab used) and by `lrlab.mapping_file.load_data` (libyaml's
    loader plus the bounds checks), in the same run."""
    import yaml

    from lrlab.mapping_file import load_data

    values = np.random.default_rng(0).random(200_000).tolist()
    text = yaml.safe_dump({"name": "table", "values": values})
    began = time.perf_counter()
    yaml.load(text, Loader=yaml.SafeLoader)
    python = time.perf_counter() - began
    began = time.perf_counter()
    load_data(text, "table")
    bounded = time.perf_counter() - began
    print(
        f"{len(text) / 1e6:.2f} MB of YAML: yaml.SafeLoader {python:.2f} s, "
        f"lrlab load_data {bounded:.2f} s, ratio {bounded / python:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run the cases whose group or name contains this")
    parser.add_argument("--skip-tunnel", action="store_true", help="skip the cases that train")
    parser.add_argument("--src", help="source tree to test (its src/ goes first on the path)")
    parser.add_argument("--json", help="write every case's outcome to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each reason")
    parser.add_argument("--yaml-speed", action="store_true", help="time a large valid YAML file")
    args = parser.parse_args()
    if args.yaml_speed:
        yaml_speed()
        return
    ENVIRONMENT["PYTHONWARNINGS"] = "ignore"
    if args.src:
        ENVIRONMENT["PYTHONPATH"] = str(Path(args.src).resolve() / "src")
        sys.path.insert(0, ENVIRONMENT["PYTHONPATH"])
    cases = all_cases(args.skip_tunnel)
    if args.only:
        cases = [case for case in cases if args.only in f"{case.group} {case.name}"]
    rows = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lrlab-hostile-") as temporary:
        top = Path(temporary)
        fixtures = top / "fixtures"
        fixtures.mkdir()
        make_fixtures(fixtures)
        (top / "cases").mkdir()
        for case in cases:
            outcome, reason, seconds = run_case(case, top, fixtures)
            rows.append({"group": case.group, "name": case.name, "owner": case.owner})
            rows[-1].update(outcome=outcome, reason=reason)
            line = f"{outcome:>13}  {seconds:5.1f} s  {case.group:8} {case.name}"
            print(line + (f"\n{'':25}{reason}" if args.verbose else ""), flush=True)
    print(f"\n{len(rows)} cases in {time.perf_counter() - began:.0f} s")
    _print_counts("all", rows)
    for key in ("group", "owner"):
        for value in dict.fromkeys(row[key] for row in rows):
            _print_counts(f"{key} {value}", [row for row in rows if row[key] == value])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


def _print_counts(title: str, rows: list[dict[str, str]]) -> None:
    counts = Counter(row["outcome"] for row in rows)
    cells = ", ".join(f"{outcome} {counts[outcome]}" for outcome in OUTCOMES if counts[outcome])
    print(f"{title:>16}: tried {len(rows)}: {cells}")


if __name__ == "__main__":
    main()
