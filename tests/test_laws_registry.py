"""The law registry: laws by name in a fixed order, a new law file registers itself (the example
law of docs/laws.md, run as such a file), and listing the laws stays cheap to import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrlab.errors import LrlabError
from lrlab.laws import DEFAULT_LAW, LAW_NAMES, REGISTRY, Law, get_law, load_law, register, registry
from lrlab.runs import Run

DOCS = Path(__file__).resolve().parents[1] / "docs" / "laws.md"


def test_law_names_are_in_the_documented_order():
    assert LAW_NAMES[:4] == ("power", "momentum", "mpl", "lrlab")
    assert list(LAW_NAMES[4:]) == sorted(LAW_NAMES[4:])  # then the others, by name
    assert list(REGISTRY) == list(LAW_NAMES)  # every listing agrees
    assert DEFAULT_LAW in LAW_NAMES


def test_every_law_is_a_keyword_only_estimator_with_its_own_file():
    for name, cls in REGISTRY.items():
        law = get_law(name)
        assert type(law)(**law.get_params()).get_params() == law.get_params()
        assert cls.__module__.startswith("lrlab.laws.") and cls.__module__.endswith("_law")
        with pytest.raises(TypeError):
            cls(1e-3)  # positional parameters are refused


def test_register_refuses_a_taken_name_and_a_non_law(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(REGISTRY))
    power = REGISTRY["power"]
    assert register(power) is power  # registering the same class again changes nothing

    class OtherPower(power):
        pass

    with pytest.raises(LrlabError, match="law name 'power' of .*OtherPower is taken by"):
        register(OtherPower)
    with pytest.raises(LrlabError, match="is not a law class"):
        register(dict)
    with pytest.raises(LrlabError, match="is not a law class"):
        register(Law)  # abstract


def _docs_example() -> str:
    """The code block of the "Adding a law" section of docs/laws.md."""
    section = DOCS.read_text(encoding="utf-8").split("## Adding a law", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/laws.md: no python block in 'Adding a law'"
    return match.group(1)


def _step_power_runs(theta: list[float], t0: float) -> list[Run]:
    """SYNTHETIC losses from the example law's own formula, for two schedules."""
    steps = np.arange(10, 600, 10)
    loss = theta[0] + theta[1] * (steps + t0) ** -theta[2]
    return [
        Run(f"run{i}", np.full(600, peak), steps, loss * (1 + 1e-4 * np.sin(steps * (i + 1))))
        for i, peak in enumerate((1e-3, 3e-3))
    ]


def test_the_docs_example_law_is_registered_as_a_new_file_and_works(tmp_path, monkeypatch):
    package = tmp_path / "more_laws"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "step_power_law.py").write_text(_docs_example(), encoding="utf-8")
    (package / "helpers.py").write_text("raise AssertionError('not a law file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "REGISTRY", dict(REGISTRY))
    registry.discover(package, "more_laws")
    assert "step_power" in registry.REGISTRY

    law = get_law("step_power", t0=5.0, bands=True)
    assert law.fit(_step_power_runs([2.0, 3.0, 0.4], t0=5.0)) is law
    np.testing.assert_allclose(law.params_, [2.0, 3.0, 0.4], rtol=2e-2)
    lr, steps = np.full(900, 1e-3), np.array([50, 400, 899])
    pred, low, high = law.predict_with_band(lr, steps)
    assert np.all(low < pred) and np.all(pred < high)
    loaded = load_law(law.save(tmp_path / "fit.json"))
    assert type(loaded) is type(law) and loaded.get_params() == law.get_params()
    np.testing.assert_array_equal(np.array(loaded.predict_with_band(lr, steps)), [pred, low, high])
    with pytest.raises(LrlabError, match="law 'step_power' has no analytic gradient"):
        law.final_loss_and_gradient(lr)
    with pytest.raises(LrlabError, match=r"law 'step_power': t0=0 is out of range"):
        get_law("step_power", t0=0)


def test_importing_the_laws_loads_no_heavy_library():
    """Listing the laws (``lrlab laws``) imports them all: no torch, matplotlib or scipy solver."""
    code = (
        "import sys, lrlab.laws; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy.optimize', 'scipy.stats') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
