"""The laws' estimator contract (parameters in, learned values out, `fit` changes no parameter),
the public fit problem a joint fit uses, and fit files written by earlier versions of lrlab."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from law_helpers import synthetic_mpl_losses
from lrlab.errors import LrlabError
from lrlab.laws import LAW_NAMES, get_law, load_law
from lrlab.runs import Run
from lrlab.schedules import parse

DATA = Path(__file__).resolve().parent / "data"
MPL = np.array([3.0, 0.5, 0.5, 300.0, 2.0, 0.6, 0.6])


def _runs(peak: float) -> list[Run]:
    """Two SYNTHETIC 400-step runs (multi-power-law losses, a little noise) at LR `peak`."""
    steps = np.arange(10, 400, 15)
    runs = []
    for name, spec in [
        ("constant", f"constant(peak={peak}, warmup=20)"),
        ("cosine", f"cosine(peak={peak}, total=400, warmup=20, end_ratio=0.1)"),
    ]:
        lr = parse(spec)(np.arange(400))
        loss = synthetic_mpl_losses(lr, steps, MPL) * (1 + 2e-3 * np.sin(steps / 7 + len(name)))
        runs.append(Run(name, lr, steps, loss))
    return runs


@pytest.mark.parametrize("name", LAW_NAMES)
def test_fit_returns_the_law_and_changes_no_parameter(name):
    config = {"lam": 0.99} if name == "momentum" else {}
    # alpha, or for a law without one (`bound`: L0, A, B) its second parameter
    held = "alpha" if "alpha" in get_law(name).param_names else get_law(name).param_names[1]
    law = get_law(name, bands=False, fixed={held: 0.5}, **config)
    before = json.dumps(law.get_params())
    assert law.fit(_runs(3e-3)) is law
    assert json.dumps(law.get_params()) == before
    assert law.params_dict[held] == 0.5
    assert law.fit_info_["peak"] == 3e-3 and law.fit_info_["warmup"] == 20


def test_lrlab_refit_on_other_runs_is_a_fresh_fit():
    """The reference LR is learned (`lr_ref_`), not written into `lr_ref`: refitting on runs at
    peak 1e-1 after runs at 1e-3 gives what a fresh law gives."""
    law = get_law("lrlab", bands=False)
    assert law.fit(_runs(1e-3)).lr_ref_ == 1e-3
    law.fit(_runs(1e-1))
    fresh = get_law("lrlab", bands=False).fit(_runs(1e-1))
    assert law.lr_ref is None and law.lr_ref_ == fresh.lr_ref_ == 1e-1
    np.testing.assert_array_equal(law.params_, fresh.params_)
    held = get_law("lrlab", bands=False, lr_ref=2e-3).fit(_runs(1e-1))
    assert held.lr_ref_ == 2e-3


def test_learned_reference_lr_is_saved_and_loaded(tmp_path):
    runs = _runs(1e-2)
    law = get_law("lrlab").fit(runs)
    assert law.lr_ref_ == max(run.lr.max() for run in runs)
    data = json.loads(law.save(tmp_path / "fit.json").read_text())
    assert data["format_version"] == 2
    assert data["config"]["lr_ref"] is None and data["learned"] == {"lr_ref": law.lr_ref_}
    loaded = load_law(tmp_path / "fit.json")
    lr, steps = parse(OLD_SCHEDULE)(np.arange(400)), np.arange(20, 400)
    np.testing.assert_array_equal(
        np.array(loaded.predict_with_band(lr, steps)), np.array(law.predict_with_band(lr, steps))
    )


def test_fit_problem_is_the_objective_the_fit_minimises():
    runs = _runs(3e-3)
    law = get_law("mpl", bands=False, fixed={"gamma": 0.6}).fit(runs)
    problem = law.fit_problem(runs)
    assert problem.points == sum(run.steps.size for run in runs)
    assert problem.lower[6] == 0.6 and problem.upper[6] == np.nextafter(0.6, 1)
    residuals = problem.objective(law.params_)
    huber = (
        np.where(np.abs(residuals) <= 1e-3, residuals**2, 2e-3 * np.abs(residuals) - 1e-6).sum() / 2
    )
    assert huber == pytest.approx(law.fit_info_["cost"], rel=1e-9)
    assert problem.jacobian(law.params_).shape == (residuals.size, 7)
    with pytest.raises(LrlabError, match="law 'mpl': no runs to fit"):
        law.fit_problem([])


# Made with lrlab at commit 454f665 (fit files format_version 1), from the runs of `_runs(3e-3)`:
#   get_law("lrlab").fit(runs).save("old_lrlab_fit.json")
#   get_law("momentum", lam=0.99).fit(runs).save("old_momentum_fit.json")
# and what that version predicted from them (prediction, band low, band high) for this schedule:
OLD_SCHEDULE = "wsd(peak=2e-3, total=400, warmup=20, cooldown_fraction=0.3, decay=linear)"
OLD_STEPS = [30, 100, 250, 399]
OLD_PREDICTIONS = {
    "lrlab": [
        [5.8419271532369645, 4.692625557324129, 4.281977489186929, 3.874787980146284],
        [4.460835025922738, 3.261893866854989, 2.971091786110467, 2.2903527302766067],
        [7.650610853215274, 6.750904695278531, 6.171243616107482, 6.555314250339454],
    ],
    "momentum": [
        [6.005883907368947, 4.720829459784392, 4.303266543266721, 3.892435599657656],
        [5.78343619561701, 4.466821020188743, 3.9962558453796304, 3.3943959747960197],
        [6.2368876025864175, 4.989282240689937, 4.633863210687294, 4.463549630031815],
    ],
}


@pytest.mark.parametrize("name", sorted(OLD_PREDICTIONS))
def test_fit_files_of_format_version_1_load_and_predict_as_before(name):
    law = load_law(DATA / f"old_{name}_fit.json")
    lr = parse(OLD_SCHEDULE)(np.arange(400))
    predicted = np.array(law.predict_with_band(lr, np.array(OLD_STEPS)))
    np.testing.assert_allclose(predicted, OLD_PREDICTIONS[name], rtol=1e-13, atol=0)
    assert law.fit_info_["peak"] == 3e-3 and law.fit_info_["warmup"] == 20  # were peak_lr, ...
    assert "peak_lr" not in law.fit_info_ and "warmup_steps" not in law.fit_info_


def test_old_fit_configurations_become_parameters():
    """Version 1 wrote the fit's reference LR into the configuration and the momentum law's
    ``lam`` into ``fixed`` as well: both still mean what they meant."""
    lrlab = load_law(DATA / "old_lrlab_fit.json")
    assert lrlab.lr_ref == lrlab.lr_ref_ == 3e-3
    momentum = load_law(DATA / "old_momentum_fit.json")
    assert momentum.lam == 0.99 and momentum.fixed_parameters() == {"lam": 0.99}


def test_fit_files_of_an_unknown_version_or_with_bad_parameters_are_refused(tmp_path):
    data = json.loads((DATA / "old_momentum_fit.json").read_text())
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({**data, "format_version": 9}))
    with pytest.raises(LrlabError, match="'format_version' is 9; this lrlab reads 1 to 2"):
        load_law(path)
    path.write_text(json.dumps({**data, "config": {**data["config"], "lamb": 0.9}}))
    with pytest.raises(LrlabError, match=r"fit.json: config: unknown field 'lamb', did you mean"):
        load_law(path)
    path.write_text(json.dumps({**data, "config": {**data["config"], "huber_delta": -1}}))
    with pytest.raises(LrlabError, match=r"fit.json: config: huber_delta=-1 is out of range"):
        load_law(path)
