"""Fixed parameters and joint fits across groups of runs (model sizes), on the shared curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import shared_data as shared
from law_helpers import require_shared_data, shared_slice_csv, write_csv
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.laws import get_law, load_law
from lrlab.laws.joint import fit_joint
from lrlab.runs import Run
from lrlab.schedules import parse

TWO_RUNS = ("constant_24000", "cosine_24000")


def _runs(size: str) -> list:
    require_shared_data()
    return shared.load_shared_runs(size, TWO_RUNS)


def test_fixed_parameter_is_held_and_the_rest_fitted():
    runs = _runs("25M")
    free = get_law("mpl", bands=False).fit(runs)
    held = get_law("mpl", bands=False, fixed={"gamma": 0.5, "C": 2.0}).fit(runs)
    assert held.params_dict["gamma"] == pytest.approx(0.5, abs=1e-12)
    assert held.params_dict["C"] == pytest.approx(2.0, abs=1e-12)
    assert held.param_errors_[held.param_names.index("gamma")] == 0.0
    assert held.params_dict["L0"] != free.params_dict["L0"]
    # Fixing parameters can only cost fit quality.
    assert held.fit_info_["cost"] >= free.fit_info_["cost"] * (1 - 1e-6)
    copy = type(held).from_dict(json.loads(json.dumps(held.to_dict())))
    assert copy.get_params()["fixed"] == {"gamma": 0.5, "C": 2.0}


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        ({"delta": 1.0}, "fixed names unknown parameter 'delta'"),
        ({"C": "two"}, "fixed C must be a finite number, got 'two'"),
        ({"C": float("nan")}, "fixed C must be a finite number, got nan"),
        ([1, 2], r"fixed=\[1, 2\] must be a mapping"),
    ],
)
def test_bad_fixed_parameter_is_a_clear_error(fixed, message):
    with pytest.raises(LrlabError, match=message):
        get_law("mpl", fixed=fixed)


def test_fixed_value_outside_the_range_is_a_clear_error():
    with pytest.raises(LrlabError, match=r"gamma = 7 is outside its range"):
        get_law("mpl", bands=False, fixed={"gamma": 7}).fit(_runs("25M"))


@pytest.mark.parametrize("lam", [0.995, 0.5, 0.999995])  # anywhere in [0, 1), either way
@pytest.mark.parametrize("how", ["parameter", "fixed"])
def test_momentum_lam_parameter_and_fixed_lam_both_fix_lambda(lam, how):
    config = {"lam": lam} if how == "parameter" else {"fixed": {"lam": lam}}
    law = get_law("momentum", bands=False, **config)
    law.fit(_runs("25M"))
    assert law.params_dict["lam"] == lam
    assert law.param_errors_[law.param_names.index("lam")] == 0.0
    assert law.get_params() == {**get_law("momentum").get_params(), "bands": False, **config}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"fixed": {"lam": 1.0}}, r"fixed lam=1.0 is out of range \(a number in \[0, 1\)\)"),
        ({"lam": 1.0}, r"lam=1.0 is out of range \(a number in \[0, 1\)\)"),
        ({"lam": -0.5}, r"lam=-0.5 is out of range \(a number in \[0, 1\)\)"),
    ],
)
def test_momentum_lam_outside_zero_one_is_refused_either_way(config, message):
    with pytest.raises(LrlabError, match=message):
        get_law("momentum", **config)


def test_momentum_lam_parameter_wins_over_a_fixed_lam():
    law = get_law("momentum", lam=0.99, fixed={"lam": 0.5, "alpha": 0.4})
    assert law.fixed_parameters() == {"lam": 0.99, "alpha": 0.4}
    assert law.fixed == {"lam": 0.5, "alpha": 0.4}  # the parameter as given


def test_joint_fit_shares_shape_and_fits_scale_per_group(tmp_path):
    groups = {"25M": _runs("25M"), "100M": _runs("100M")}
    laws = fit_joint("mpl", groups, bands=False)
    assert list(laws) == ["25M", "100M"]
    small, large = laws["25M"], laws["100M"]
    for name in small.shape_params:
        assert small.params_dict[name] == large.params_dict[name]
        assert small.param_errors_[small.param_names.index(name)] > 0
    assert small.params_dict["L0"] > large.params_dict["L0"]  # the larger model reaches lower
    separate = sum(
        get_law("mpl", bands=False).fit(runs).fit_info_["cost"] for runs in groups.values()
    )
    joint = sum(law.fit_info_["cost"] for law in laws.values())
    assert joint >= separate * (1 - 1e-6)  # sharing is a constraint
    assert joint <= separate * 3  # ... that these sizes satisfy well
    saved = load_law(small.save(tmp_path / "small.json"))
    assert saved.fit_info_["joint"]["shared"] == ["C", "beta", "gamma"]
    run = groups["25M"][1]
    np.testing.assert_allclose(saved.predict_run(run), small.predict_run(run))


# The wind tunnel's study schedules (800 steps, peak 3e-3), as in `lrlab study`.
TUNNEL_SPECS = (
    "constant(peak=3e-3, warmup=40)",
    "cosine(peak=3e-3, total=800, warmup=40, end_ratio=0.1)",
    "two_stage(peak=3e-3, warmup=40, drop_step=480, low=3e-4)",
)
# Momentum-law parameters of the size the tunnel's runs give; L0 lies far below the losses, out
# of reach of the law's fixed starts once lam is held off its best value.
TUNNEL_MOMENTUM = [0.32, 1.41, 0.23, 1.07, 0.9847]


def _synthetic_momentum_runs(params: list[float]) -> list[Run]:
    """SYNTHETIC loss curves generated by the momentum law itself (for recovery tests)."""
    truth = get_law("momentum")
    truth.params_ = np.array(params)
    steps = np.arange(10, 800, 10)
    runs = []
    for index, spec in enumerate(TUNNEL_SPECS):
        lr = parse(spec)(np.arange(800))
        runs.append(Run(name=f"run{index}", lr=lr, steps=steps, loss=truth.predict(lr, steps)))
    return runs


def test_warm_start_reaches_a_minimum_the_fixed_starts_miss():
    runs = _synthetic_momentum_runs(TUNNEL_MOMENTUM)
    fixed = {"lam": 0.9822}
    cold = get_law("momentum", bands=False, fixed=fixed).fit(runs)
    warm = get_law("momentum", bands=False, fixed=fixed).fit(
        runs, start=[*TUNNEL_MOMENTUM[:4], 0.9822]
    )
    assert warm.fit_info_["cost"] < 0.1 * cold.fit_info_["cost"]
    assert warm.params_dict["L0"] == pytest.approx(0.32, abs=0.1)
    with pytest.raises(LrlabError, match="start must be 5 finite numbers"):
        get_law("momentum", bands=False).fit(runs, start=[1.0, 2.0])


def test_joint_fit_keeps_each_groups_share_of_the_joint_solution():
    """Each group is refitted with the shared values held, starting from the joint solution: the
    law's fixed starts alone fall into a far worse minimum here (cost 0.0036, L0 1.09)."""
    groups = {
        "small": _synthetic_momentum_runs(TUNNEL_MOMENTUM),
        "large": _synthetic_momentum_runs([0.21, 1.33, 0.21, 2.02, 0.9810]),
    }
    laws = fit_joint("momentum", groups, bands=False)
    for name, law in laws.items():
        assert law.fit_info_["cost"] < 1e-3, name
    assert laws["small"].params_dict["L0"] == pytest.approx(0.32, abs=0.1)


def test_joint_fit_input_errors():
    runs = _runs("25M")
    with pytest.raises(LrlabError, match="at least two groups"):
        fit_joint("mpl", {"25M": runs})
    with pytest.raises(LrlabError, match="group '100M' has no runs"):
        fit_joint("mpl", {"25M": runs, "100M": []})
    with pytest.raises(LrlabError, match="shares none of delta"):
        fit_joint("mpl", {"a": runs, "b": runs}, shared=["delta"])
    with pytest.raises(LrlabError, match="shares none of no parameters"):
        fit_joint("power", {"a": runs, "b": runs})


def test_cli_joint_fit_writes_one_fit_per_directory(tmp_path, capsys):
    paths = []
    for size in ("25M", "100M"):
        (tmp_path / size).mkdir()
        paths += [str(shared_slice_csv(tmp_path / size, size, name)) for name in TWO_RUNS]
    schedules = [
        arg for name in TWO_RUNS * 2 for arg in ("--schedule", shared.SCHEDULE_SPECS[name])
    ]
    out = tmp_path / "fits"
    code = main(
        ["fit", *paths, *schedules, "--joint", "--law", "mpl", "--no-bands", "-o", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "group 25M: law: mpl" in printed and "(shared by the groups)" in printed
    small, large = load_law(out / "25M.json"), load_law(out / "100M.json")
    assert small.params_dict["beta"] == large.params_dict["beta"]
    assert small.params_dict["A"] != large.params_dict["A"]


def test_cli_joint_fit_errors_name_the_problem(tmp_path, capsys):
    (tmp_path / "25M").mkdir()
    paths = [str(shared_slice_csv(tmp_path / "25M", "25M", name)) for name in TWO_RUNS]
    assert main(["fit", *paths, "--joint", "--no-bands"]) == 2
    error = capsys.readouterr().err
    assert f"all runs are in one group, directory {tmp_path / '25M'} (runs are grouped" in error
    (tmp_path / "100M").mkdir()
    paths.append(str(shared_slice_csv(tmp_path / "100M", "100M", "constant_24000")))
    target = tmp_path / "fits.json"
    target.write_text("{}", encoding="utf-8")
    assert main(["fit", *paths, "--joint", "--no-bands", "-o", str(target)]) == 2
    assert "with --joint, -o names a directory" in capsys.readouterr().err
    (tmp_path / "other" / "25M").mkdir(parents=True)
    paths.append(str(shared_slice_csv(tmp_path / "other" / "25M", "25M", "wsdcon_9")))
    assert main(["fit", *paths, "--joint", "--no-bands"]) == 2
    error = capsys.readouterr().err
    assert "are both named '25M'" in error and str(tmp_path / "other" / "25M") in error


def _tunnel_layout(root: Path, widths: dict[str, list[float]]) -> dict[str, list[str]]:
    """The wind tunnel's layout, ``WIDTH/<run>/eval.csv``, of SYNTHETIC momentum-law runs (one
    row a step), the law's parameters per width: the paths of each width's runs."""
    paths: dict[str, list[str]] = {}
    for width, params in widths.items():
        law = get_law("momentum")
        law.params_ = np.array(params)
        for index, spec in enumerate(TUNNEL_SPECS):
            lr = parse(spec)(np.arange(800))
            steps = np.arange(1, 800)
            loss = law.predict(lr, steps)
            rows = [f"{s},{lr[s]:.10g},{v:.10g}" for s, v in zip(steps, loss, strict=True)]
            (root / width / f"run{index}").mkdir(parents=True)
            path = write_csv(root / width / f"run{index}" / "eval.csv", "step,lr,loss", rows)
            paths.setdefault(width, []).append(str(path))
    return paths


def test_cli_joint_fit_groups_the_wind_tunnel_s_runs_by_width(tmp_path, capsys):
    """``d32/<run>/eval.csv``: one group per width, not one per run (whose folder names, the
    same in every width, used to be refused as two directories of one name)."""
    widths = {"d32": TUNNEL_MOMENTUM, "d48": [0.21, 1.33, 0.21, 2.02, 0.9810]}
    paths = _tunnel_layout(tmp_path / "laws_tunnel", widths)
    out = tmp_path / "fits"
    argv = ["fit", *paths["d32"], *paths["d48"], "--joint", "--law", "momentum", "--no-bands"]
    assert main([*argv, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {group: sorted(fit["quality"]) for group, fit in report.items()} == {
        "d32": ["d32/run0/eval", "d32/run1/eval", "d32/run2/eval"],
        "d48": ["d48/run0/eval", "d48/run1/eval", "d48/run2/eval"],
    }
    small, large = load_law(out / "d32.json"), load_law(out / "d48.json")
    assert small.params_dict["lam"] == large.params_dict["lam"]
    assert small.fit_info_["joint"]["groups"] == ["d32", "d48"]


def test_cli_joint_fit_takes_links_as_given(tmp_path, capsys):
    """Logs linked into ``small/`` and ``large/`` are those groups' runs, wherever they point
    (here into a folder per run, ``WIDTH/<run>/eval.csv``, so that links followed would make a
    group of each run's name, mixing the widths); linked into one folder, they are one group."""
    widths = {"d32": TUNNEL_MOMENTUM, "d48": [0.21, 1.33, 0.21, 2.02, 0.9810]}
    paths = _tunnel_layout(tmp_path / "store", widths)
    links = {"small": [], "large": []}
    for group, width in (("small", "d32"), ("large", "d48")):
        for path in paths[width]:
            link = tmp_path / "gathered" / group / f"{Path(path).parent.name}.csv"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
            links[group].append(str(link))
    argv = ["fit", *links["small"], *links["large"], "--joint", "--law", "momentum", "--no-bands"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {group: sorted(fit["quality"]) for group, fit in report.items()} == {
        "small": ["small/run0", "small/run1", "small/run2"],
        "large": ["large/run0", "large/run1", "large/run2"],
    }
    assert report["small"]["params"]["L0"] == pytest.approx(TUNNEL_MOMENTUM[0], abs=0.1)
    one = tmp_path / "gathered" / "one"
    one.mkdir()
    for path in paths["d32"][:2] + paths["d48"][:2]:
        (one / f"{Path(path).parent.parent.name}-{Path(path).parent.name}.csv").symlink_to(path)
    argv = ["fit", *map(str, sorted(one.iterdir())), "--joint", "--law", "momentum"]
    assert main([*argv, "--no-bands"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"all runs are in one group, directory {one} (runs are grouped by" in error
