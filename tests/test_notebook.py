"""examples/temperature_tour.ipynb runs top to bottom, and what it prints is right."""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")
pytest.importorskip("torch")
pytest.importorskip("transformers")

import nbclient
import nbformat
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax
from scipy.stats import entropy as sp_entropy

from thermoscope.sampling import Sampler

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "temperature_tour.ipynb"
SRC = ROOT / "src"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WORDS = ["day", "space", "furniture", "experience", "problem", "challenge"]
Z = np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7])

# Appended to the in-memory copy only: which interpreter and which thermoscope the kernel ran.
_WHERE = "import sys, thermoscope\nprint(sys.executable)\nprint(thermoscope.__file__)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook executed once in a fresh python3 kernel, cwd a temporary folder."""
    tmp = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as mp:
        # Jupyter's own DeprecationWarning about moving to platformdirs paths fires
        # unless this opt-in is set; with it, runtime and config use the new paths.
        mp.setenv("JUPYTER_PLATFORM_DIRS", "1")
        # Keep the kernel's connection files and IPython history out of the home folder.
        mp.setenv("JUPYTER_RUNTIME_DIR", str(tmp / "runtime"))
        mp.setenv("IPYTHONDIR", str(tmp / "ipython"))
        # The kernel must import this checkout's thermoscope, installed or not.
        mp.setenv("PYTHONPATH", str(SRC), prepend=os.pathsep)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(_WHERE, metadata={"tags": ["where"]}))
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=300,
            resources={"metadata": {"path": str(tmp)}},
        )
        client.execute()
    return nb


def tagged(nb: Any, tag: str) -> Any:
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return cell


def stdout(cell: Any) -> str:
    return "".join(
        o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == "stdout"
    )


def printed(cell: Any, label: str) -> str:
    """The rest of the line that starts with ``label`` in the cell's output."""
    match = re.search(rf"^{re.escape(label)}\s*(.+)$", stdout(cell), re.MULTILINE)
    assert match is not None, stdout(cell)
    return match.group(1)


def test_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 7
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None


def test_runs_without_errors_or_warnings(executed: Any) -> None:
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out["output_type"] != "error", out
            # stderr in a cell is a warning or a traceback: the tour should print neither.
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), out


def test_kernel_ran_this_checkout(executed: Any) -> None:
    executable, module = stdout(tagged(executed, "where")).split()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(module).resolve() == (SRC / "thermoscope" / "__init__.py").resolve()


def test_softmax_at_t1_is_scipys(executed: Any) -> None:
    shown = ast.literal_eval(printed(tagged(executed, "softmax-t1"), "softmax at T = 1:"))
    np.testing.assert_allclose(shown, sp_softmax([2.0, 1.0, 0.5]), rtol=1e-12)


def test_temperature_for_one_nat(executed: Any) -> None:
    cell = tagged(executed, "entropy-target")
    t_star = float(printed(cell, "temperature for 1 nat:"))
    expected = brentq(lambda t: sp_entropy(sp_softmax(Z / t)) - 1.0, 0.1, 10.0, xtol=1e-14)
    assert t_star == pytest.approx(expected, rel=1e-9)
    assert float(printed(cell, "entropy at that temperature:")) == pytest.approx(1.0, abs=1e-9)


def test_calibration_temperature_minimises_validation_nll(executed: Any) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    cell = tagged(executed, "calibration-fit")
    fitted = float(printed(cell, "fitted temperature:"))
    assert float(printed(cell, "TemperatureScaler on the same logits:")) == pytest.approx(
        fitted, rel=1e-9
    )
    # The notebook's model and split, rebuilt here; T minimises the mean NLL of z / T.
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=0.5, random_state=0, stratify=y
    )
    X_val, _, y_val, _ = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
    )
    z_val = (
        LogisticRegression(C=1e4, max_iter=10_000).fit(X_train, y_train).decision_function(X_val)
    )

    def nll(log_t: float) -> float:
        logp = sp_log_softmax(z_val / np.exp(log_t), axis=1)
        return float(-logp[np.arange(y_val.size), y_val].mean())

    best = minimize_scalar(nll, bounds=(-3.0, 5.0), method="bounded", options={"xatol": 1e-10})
    assert fitted == pytest.approx(float(np.exp(best.x)), rel=1e-6)
    assert fitted > 1.0  # the weakly regularised model was overconfident


def test_widget_cells_display_widgets_and_follow_the_sliders(executed: Any) -> None:
    widget_outputs = [
        out
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if WIDGET_VIEW in out.get("data", {})
    ]
    assert len(widget_outputs) == 3  # explore twice, explore_prompt once
    # The notebook sets T = 1.5 and top-k 4 on a widget started at top-p 0.9.
    cell = next(c for c in executed.cells if "w.temperature.value = 1.5" in c.source)
    kept = ast.literal_eval(printed(cell, "kept:"))
    probs = Sampler.from_options(temperature=1.5, top_k=4, top_p=0.9).probs(Z)
    assert kept == [WORDS[i] for i in np.flatnonzero(probs > 0)]
    stats = ast.literal_eval(stdout(cell).splitlines()[-1])
    assert stats["entropy"] == pytest.approx(sp_entropy(probs), abs=5e-5)
    assert stats["max_probability"] == pytest.approx(probs.max(), abs=5e-5)
    assert stats["nucleus_mass"] == pytest.approx(sp_softmax(Z / 1.5)[probs > 0].sum(), abs=5e-5)


def test_prompt_explorer_cell_samples_what_generate_at_temperatures_samples(
    executed: Any,
) -> None:
    from thermoscope.generation import generate_at_temperatures, load_model

    cell = next(c for c in executed.cells if "explore_prompt(" in c.source and "pw =" in c.source)
    model, tokenizer = load_model()
    expected = generate_at_temperatures(
        model,
        tokenizer,
        "import os\nimport",
        [0.8],
        n=1,
        max_new_tokens=30,
        seed=1,
        sampler_options={"top_p": 0.9},
        progress=False,
    ).samples[0]
    assert ast.literal_eval(stdout(cell).splitlines()[0]) == expected.text
