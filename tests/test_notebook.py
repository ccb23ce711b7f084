"""examples/temperature_tour.ipynb runs top to bottom, and what it prints is right."""

from __future__ import annotations

import ast
import itertools
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
        for cell in nb.cells:  # run from scratch: nothing of the stored outputs survives
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
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


def signature(nb: Any) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Each cell's type and, for code, the kind of each output (not its timing-dependent text)."""
    out = []
    for cell in nb.cells:
        kinds: list[tuple[str, ...]] = []
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                kinds.append(("stream", o["name"]))
            elif o["output_type"] == "error":
                kinds.append(("error", o["ename"]))
            else:
                kinds.append((o["output_type"], *sorted(o.get("data", {}))))
        out.append((cell.cell_type, kinds))
    return out


def test_stored_executed_with_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 7
    # Run top to bottom once: execution counts 1, 2, 3, ...
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    kinds = [k for _, cell_kinds in signature(nb) for k in cell_kinds]
    assert not [k for k in kinds if k[0] == "error" or k == ("stream", "stderr")]
    assert sum("image/png" in k for k in kinds) >= 6  # the plots show where people browse
    assert sum(c.outputs != [] for c in code) >= len(code) - 2
    text = NOTEBOOK.read_text(encoding="utf-8")
    # No trace of the machine that ran it.
    assert "/tmp/" not in text
    assert str(ROOT) not in text


def test_fresh_run_has_the_stored_structure(executed: Any) -> None:
    stored = nbformat.read(NOTEBOOK, as_version=4)
    fresh = signature(executed)[:-1]  # the appended "where" cell is not part of the notebook
    assert len(fresh) == len(stored.cells)
    assert [c.source for c in executed.cells[:-1]] == [c.source for c in stored.cells]
    for i, (got, want) in enumerate(zip(fresh, signature(stored), strict=True)):
        # On a mismatch, say which cell and what it printed.
        assert got == want, (i, executed.cells[i].source[:80], executed.cells[i].get("outputs"))


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


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notebook's network, rebuilt here: validation and test logits and labels."""
    from thermoscope.demos.calibration import mlp_logits, noisy_label_mlp

    mlp, (_, X_val, X_test, _, y_val, y_test) = noisy_label_mlp(seed=0, quick=True)
    return mlp_logits(mlp, X_val), y_val, mlp_logits(mlp, X_test), y_test


def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    logp = sp_log_softmax(z / t, axis=1)
    return float(-logp[np.arange(y.size), y].mean())


def ece(z: np.ndarray, y: np.ndarray, t: float, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width bins, last bin closed, written out here."""
    p = sp_softmax(z / t, axis=1)
    conf, hit = p.max(axis=1), p.argmax(axis=1) == y
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(conf[m].mean() - hit[m].mean())
    return total / y.size


def test_calibration_temperature_minimises_validation_nll(executed: Any, noisy: Any) -> None:
    z_val, y_val, _, _ = noisy
    cell = tagged(executed, "calibration-fit")
    fitted = float(printed(cell, "fitted temperature:"))
    assert float(printed(cell, "TemperatureScaler on the same logits:")) == pytest.approx(
        fitted, rel=1e-9
    )
    best = minimize_scalar(
        lambda log_t: nll(z_val, y_val, float(np.exp(log_t))),
        bounds=(-3.0, 5.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert fitted == pytest.approx(float(np.exp(best.x)), rel=1e-6)
    assert fitted > 1.5  # the network that memorised noisy labels is overconfident


def test_calibration_metrics_are_right_and_the_case_convinces(executed: Any, noisy: Any) -> None:
    _, _, z_test, y_test = noisy
    cell = tagged(executed, "calibration-metrics")
    t = float(printed(tagged(executed, "calibration-fit"), "fitted temperature:"))

    def pair(label: str) -> tuple[float, float]:
        match = re.search(rf"{re.escape(label)} before ([\d.]+), after ([\d.]+)", stdout(cell))
        assert match is not None, stdout(cell)
        return float(match.group(1)), float(match.group(2))

    nll_b, nll_a = pair("NLL:")
    ece_b, ece_a = pair("ECE:")
    assert (nll_b, nll_a) == pytest.approx(
        (nll(z_test, y_test, 1.0), nll(z_test, y_test, t)), abs=1e-4
    )
    assert (ece_b, ece_a) == pytest.approx(
        (ece(z_test, y_test, 1.0), ece(z_test, y_test, t)), abs=1e-4
    )
    # Large, real miscalibration, and temperature removes most of it.
    assert ece_b > 0.1
    assert ece_a < ece_b / 2
    assert nll_a < nll_b - 0.1
    brier_b, brier_a = pair("Brier:")
    assert brier_a < brier_b
    acc = float(np.mean(z_test.argmax(axis=1) == y_test))
    assert float(printed(cell, "accuracy: before")) == pytest.approx(acc)
    assert float(printed(cell, "accuracy: after")) == pytest.approx(acc)


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

    cell = tagged(executed, "prompt-sample")
    model, tokenizer = load_model()
    expected = generate_at_temperatures(
        model,
        tokenizer,
        "def parse(",
        [0.7],
        n=1,
        max_new_tokens=30,
        seed=1,
        sampler_options={"top_p": 0.9},
        progress=False,
    ).samples[0]
    assert stdout(cell) == expected.text + "\n"
    # Not degenerate: no token repeated over and over, mostly distinct bigrams.
    ids = tokenizer(expected.text).input_ids
    assert len(ids) >= 20
    bigrams = list(itertools.pairwise(ids))
    assert len(set(bigrams)) / len(bigrams) > 0.8
    runs = max(len(list(g)) for _, g in itertools.groupby(ids))
    assert runs <= 3
