"""The README's promises: `.ci/run` runs exactly its test command, and every example runs as
written after the README's first command (the default study), on what that command leaves: the
core with the plot and torch extras installed, and a `study/` folder of wind-tunnel runs, here
SYNTHETIC runs of the same schedules, folders and files (training them takes minutes)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from law_helpers import synthetic_mpl_losses
from lrlab.cli import build_parser
from lrlab.design import baselines
from lrlab.schedules import parse
from lrlab.study import StudyConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIRST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[plot,torch]' && lrlab study"
)
# The packages of the extras the first command leaves out: missing in the examples' processes.
NOT_INSTALLED = ("transformers", "accelerate", "jax", "optax", "lightning", "tokenizers")
# The multi-power law's 25M parameters (Luo et al. 2025): the shape of the synthetic curves.
MPL_25M = [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]


def _blocks() -> list[tuple[str, str]]:
    """The README's code blocks, in order: (language, text)."""
    found = re.finditer(r"^```(\w*)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    return [(match.group(1), match.group(2)) for match in found]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    test_command = ci_lines[-1]
    assert test_command.endswith("python -m pytest -q")
    assert f"```bash\n{test_command}\n```" in readme


def test_the_first_command_is_the_default_study():
    assert _blocks()[0] == ("bash", FIRST_COMMAND + "\n")


def _first_command_outputs(folder: Path) -> None:
    """What the default study leaves in `folder`: ``study/runs/ROLE-HASH/`` for its fit runs and
    checks, each with ``train.csv`` (with gradient norms), ``eval.csv`` (every 10 steps), their
    schedule sidecars and ``config.json``; SYNTHETIC losses of the multi-power law's shape."""
    config = StudyConfig()
    schedules = {f"fit-{name}": spec for name, spec in config.fit_runs().items()}
    compared = baselines(config.peak, config.budget, config.warmup)
    schedules["verify-recommended"] = parse(
        f"wsd(peak={config.peak}, total={config.budget}, warmup={config.warmup}, "
        "cooldown_fraction=0.3)"
    )
    schedules["verify-wsd-20%-linear"] = compared["wsd-20%-linear"]
    noise = np.random.default_rng(0)
    steps = np.arange(config.budget)
    for index, (role, schedule) in enumerate(schedules.items()):
        run = folder / "study" / "runs" / f"{role}-{index:08x}"
        run.mkdir(parents=True)
        lr = schedule(steps)
        trained = np.cumsum(lr) > 0
        loss = np.full(steps.size, np.log(256))  # a byte-level model's loss before training
        curve = synthetic_mpl_losses(lr, steps[trained], np.array(MPL_25M))
        loss[trained] = 5.5 * np.tanh(curve / 5.5) * (1 + 0.002 * noise.standard_normal(curve.size))
        grad_norm = 1 + 0.5 * np.exp(-steps / 100)
        rows = [f"{s},{float(lr[s])!r},{loss[s]:.6f},{grad_norm[s]:.6f}" for s in steps]
        (run / "train.csv").write_text("step,lr,loss,grad_norm\n" + "\n".join(rows) + "\n")
        rows = [f"{s},{float(lr[s])!r},{loss[s]:.6f}" for s in steps[9::10]]
        (run / "eval.csv").write_text("step,lr,loss\n" + "\n".join(rows) + "\n")
        for log in ("train.csv", "eval.csv"):
            (run / f"{log}.schedule.json").write_text(json.dumps(schedule.to_spec()))
        train = {"steps": config.budget, "schedule": str(schedule)}
        (run / "config.json").write_text(json.dumps({"train": train}))


def _environment(folder: Path) -> dict[str, str]:
    """The examples' environment: this Python's `lrlab` first on the path, and the packages of
    the extras the first command leaves out missing (blocked by a ``sitecustomize``)."""
    blocker = folder / "_not_installed"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        f"import sys\nsys.modules.update(dict.fromkeys({NOT_INSTALLED!r}))\n"
    )
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONPATH": str(blocker), "MPLBACKEND": "Agg"}


def _runs_long(line: str) -> bool:
    """Commands that train (minutes) or follow a run until stopped: their arguments are checked,
    not run."""
    words = shlex.split(line, comments=True)
    command = words[1] if len(words) > 1 else ""
    return (
        command in ("train", "sweep")
        or (command == "study" and "--runs" not in words)
        or (command == "watch" and "--once" not in words)
        or (command == "reproduce" and "--list" not in words)
    )


def _check_python(text: str, folder: Path, environment: dict[str, str]) -> bool:
    """A Python example runs (True), or stops at an import of an extra the first command leaves
    out (False), with an error naming that extra, which the example's own comment names too."""
    script = folder / "example.py"
    script.write_text(text)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 0:
        return True
    last = done.stderr.strip().splitlines()[-1]
    needed = re.search(r"MissingExtraError: .* pip install 'lrlab\[([\w,]+)\]'", last)
    assert needed, f"README example failed:\n{text}\n{done.stderr}"
    named = re.findall(r"pip install 'lrlab\[([\w,]+)\]'", text)
    extras = {extra for group in named for extra in group.split(",")}
    assert set(needed.group(1).split(",")) - {"torch"} <= extras, (text, last)
    return False


def test_the_readme_examples_run_after_the_first_command(tmp_path):
    _first_command_outputs(tmp_path)
    environment = _environment(tmp_path)
    parser = build_parser()
    checked, stopped = 0, 0
    for language, text in _blocks()[1:]:
        if language == "bash" and "python3 -m venv" not in text:
            for line in text.splitlines():
                if not line.strip() or line.startswith("#"):
                    continue
                assert line.startswith("lrlab "), line
                # A block that trains (the wind tunnel's) works on the runs it trains.
                if _runs_long(line) or "lrlab train " in text:
                    parser.parse_args(shlex.split(line, comments=True)[1:])
                    continue
                done = subprocess.run(
                    ["bash", "-c", line],
                    cwd=tmp_path,
                    env=environment,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                assert done.returncode == 0, f"{line}\n{done.stderr}"
                checked += 1
        elif language == "python":
            ran = _check_python(text, tmp_path, environment)
            checked, stopped = checked + ran, stopped + (not ran)
        elif language == "yaml":
            StudyConfig.from_mapping(yaml.safe_load(text), source="README")
        elif language == "" and text.startswith("$ lrlab "):  # a command and what it prints
            command, *expected = text.splitlines()
            done = subprocess.run(
                ["bash", "-c", command[2:]],
                cwd=tmp_path,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert (done.stdout + done.stderr).splitlines() == expected
    assert checked >= 15 and stopped >= 1  # the examples were found; one needs an extra


def test_the_sweep_files_the_readme_names_are_valid_sweeps():
    from lrlab.tunnel.sweep import load_sweep

    named = set(re.findall(r"lrlab sweep --config (\S+)", README))
    assert named == {"examples/sweep.yaml"}
    for path in named:
        assert len(load_sweep(ROOT / path).runs()) == 4
