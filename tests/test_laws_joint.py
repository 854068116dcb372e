"""Fixed parameters and joint fits across groups of runs (model sizes), on the shared curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from law_helpers import require_shared_data, shared_slice_csv
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.laws import get_law, load_law
from lrlab.laws.joint import fit_joint
from lrlab.runs import shared

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
    assert copy.config["fixed"] == {"gamma": 0.5, "C": 2.0}


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        ({"delta": 1.0}, "unknown parameter 'delta'"),
        ({"C": "two"}, "C must be a finite number"),
        ([1, 2], "must map parameter names"),
    ],
)
def test_bad_fixed_option_is_a_clear_error(fixed, message):
    with pytest.raises(LrlabError, match=message):
        get_law("mpl", fixed=fixed)


def test_fixed_value_outside_the_range_is_a_clear_error():
    with pytest.raises(LrlabError, match=r"gamma = 7 is outside its range"):
        get_law("mpl", bands=False, fixed={"gamma": 7}).fit(_runs("25M"))


@pytest.mark.parametrize("lam", [0.995, 0.5, 0.999995])  # anywhere the option admits, [0, 1)
def test_momentum_lam_option_still_fixes_lambda(lam):
    law = get_law("momentum", bands=False, lam=lam).fit(_runs("25M"))
    assert law.params_dict["lam"] == lam
    assert law.param_errors_[law.param_names.index("lam")] == 0.0


def test_joint_fit_shares_shape_and_fits_scale_per_group(tmp_path):
    groups = {"25M": _runs("25M"), "100M": _runs("100M")}
    laws = fit_joint("mpl", groups, bands=False)
    assert list(laws) == ["25M", "100M"]
    small, large = laws["25M"], laws["100M"]
    for name in small.shape_params:
        assert small.params_dict[name] == large.params_dict[name]
        assert small.param_errors_[small.param_names.index(name)] > 0
    assert small.params_dict["L0"] > large.params_dict["L0"]  # the larger model reaches lower
    separate = sum(get_law("mpl", bands=False).fit(runs).fit_info_["cost"] for runs in groups.values())
    joint = sum(law.fit_info_["cost"] for law in laws.values())
    assert joint >= separate * (1 - 1e-6)  # sharing is a constraint
    assert joint <= separate * 3  # ... that these sizes satisfy well
    saved = load_law(small.save(tmp_path / "small.json"))
    assert saved.fit_info_["joint"]["shared"] == ["C", "beta", "gamma"]
    run = groups["25M"][1]
    np.testing.assert_allclose(saved.predict_run(run), small.predict_run(run))


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
    code = main(["fit", *paths, *schedules, "--joint", "--law", "mpl", "--no-bands", "-o", str(out)])
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
    assert "all runs are in one directory (25M)" in capsys.readouterr().err
    (tmp_path / "100M").mkdir()
    paths.append(str(shared_slice_csv(tmp_path / "100M", "100M", "constant_24000")))
    target = tmp_path / "fits.json"
    target.write_text("{}", encoding="utf-8")
    assert main(["fit", *paths, "--joint", "--no-bands", "-o", str(target)]) == 2
    assert "with --joint, -o names a directory" in capsys.readouterr().err
