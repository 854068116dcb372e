"""The public API: the names `lrlab` offers at its top level, and `lrlab.fit`."""

from __future__ import annotations

import numpy as np
import pytest

import lrlab
from lrlab.errors import LrlabError


def test_every_public_name_resolves() -> None:
    for name in lrlab.__all__:
        assert getattr(lrlab, name) is not None, name
    assert set(lrlab.__all__) <= set(dir(lrlab))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        lrlab.nonexistent  # noqa: B018


def test_every_registered_schedule_is_a_public_class() -> None:
    from lrlab.schedules import REGISTRY

    exported = {getattr(lrlab, name) for name in lrlab.__all__ if name[0].isupper()}
    composition = {"join", "scale", "continue_from"}  # built with the functions of those names
    missing = [name for name, cls in REGISTRY.items() if cls not in exported]
    assert sorted(missing) == sorted(composition)
    assert all(callable(getattr(lrlab, name)) for name in composition)


def _write_log(path, schedule, steps: int = 400) -> None:
    t = np.arange(1, steps + 1)
    lr = schedule(t)
    loss = 2.0 + 3.0 * np.cumsum(lr) ** -0.4 - 80.0 * (lr.max() - lr)
    rows = "\n".join(f"{s},{a:.8g},{b:.8g}" for s, a, b in zip(t, lr, loss, strict=True))
    path.write_text("step,lr,loss\n" + rows + "\n")


def test_fit_from_paths_and_runs_forecast_and_reload(tmp_path) -> None:
    constant = lrlab.Constant(peak=3e-3, warmup=20)
    cosine = lrlab.Cosine(peak=3e-3, total=400, warmup=20)
    _write_log(tmp_path / "constant.csv", constant)
    _write_log(tmp_path / "cosine.csv", cosine)
    law = lrlab.fit([tmp_path / "constant.csv", str(tmp_path / "cosine.csv")], law="power")
    again = lrlab.fit([lrlab.read_run(tmp_path / "constant.csv")], law="power", bands=False)
    assert law.name == "power" and again.name == "power"
    wsd = lrlab.WSD(peak=3e-3, total=400, warmup=20, cooldown_fraction=0.2)
    result = lrlab.forecast(law, wsd, 400)
    assert np.isfinite(result.final_loss)
    law.save(tmp_path / "fit.json")
    loaded = lrlab.load_law(tmp_path / "fit.json")
    assert lrlab.forecast(loaded, wsd, 400).final_loss == result.final_loss


def test_fit_names_a_bad_law_or_parameter(tmp_path) -> None:
    _write_log(tmp_path / "run.csv", lrlab.Constant(peak=1e-3))
    with pytest.raises(LrlabError, match="unknown law 'nope'"):
        lrlab.fit([tmp_path / "run.csv"], law="nope")
    with pytest.raises(LrlabError, match="power"):
        lrlab.fit([tmp_path / "run.csv"], law="power", not_a_parameter=1)
