"""Exact temperature scaling: scipy parity, autograd, invariants, bounds, JSON, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special

from thermoscope.calibration._nll import Derivatives
from thermoscope.calibration.fit import (
    SeparableDataWarning,
    TemperatureBoundWarning,
    fit_temperature,
    temperature_for_confidence,
)
from thermoscope.calibration.scaler import NotFittedError, TemperatureScaler


def make_data(
    n: int, c: int, scale: float = 3.0, true_t: float = 2.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Logits scale * N(0, 1) and labels drawn from softmax(z / true_t)."""
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((n, c))
    p = special.softmax(z / true_t, axis=1)
    y = np.minimum((np.cumsum(p, axis=1) < rng.random((n, 1))).sum(axis=1), c - 1)
    return z, y


def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    """Mean NLL of softmax(z / t), by scipy (independent of thermoscope)."""
    logp = special.log_softmax(np.asarray(z, dtype=np.float64) / t, axis=1)
    return float(-logp[np.arange(len(y)), y].mean())


def scipy_temperature(z: np.ndarray, y: np.ndarray, bounds: tuple[float, float]) -> float:
    res = optimize.minimize_scalar(
        lambda t: nll(z, y, t), bounds=bounds, method="bounded", options={"xatol": 1e-12}
    )
    return float(res.x)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(
    ("n", "c", "scale", "true_t", "dtype"),
    [
        (2000, 10, 3.0, 2.0, np.float64),
        (3000, 100, 5.0, 3.0, np.float64),
        (500, 3, 0.5, 0.5, np.float64),
        (2000, 10, 3.0, 0.7, np.float32),
        (9000, 5, 2.0, 1.3, np.float64),  # more than two chunks of 4096 rows
    ],
)
def test_matches_scipy_bounded_minimiser(
    n: int, c: int, scale: float, true_t: float, dtype: type
) -> None:
    z, y = make_data(n, c, scale, true_t)
    z = z.astype(dtype)
    fit = fit_temperature(z, y)
    ref = scipy_temperature(z, y, (0.05, 50.0))
    assert fit.temperature == pytest.approx(ref, rel=1e-6)
    assert fit.bound is None
    # Exact: no T in a fine neighbourhood does better, and the NLL is scipy's.
    assert fit.nll == pytest.approx(nll(z, y, fit.temperature), rel=1e-12)
    for factor in (1 - 1e-4, 1 + 1e-4):
        assert nll(z, y, fit.temperature) <= nll(z, y, fit.temperature * factor)
    assert fit.nll_at_one == pytest.approx(nll(z, y, 1.0), rel=1e-12)


def test_closed_form_two_class_optimum() -> None:
    # Right 2 times in 3 with logit gap 1: sigmoid(1 / T) = 2/3, so T = 1 / ln 2.
    z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert fit_temperature(z, [0, 1, 1]).temperature == pytest.approx(1 / math.log(2), rel=1e-14)


def test_derivatives_match_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    z, y = make_data(700, 7, seed=3)
    kernel = Derivatives(z, y)
    for beta in (0.1, 0.5, 1.0, 3.0):
        b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        zt = torch.from_numpy(z)
        loss = torch.nn.functional.cross_entropy(b * zt, torch.from_numpy(y))
        (g,) = torch.autograd.grad(loss, b, create_graph=True)
        (h,) = torch.autograd.grad(g, b)
        f_k, g_k, h_k = kernel(beta)
        assert f_k == pytest.approx(float(loss.detach()), rel=1e-12)
        assert g_k == pytest.approx(float(g.detach()), rel=1e-9, abs=1e-12)
        assert h_k == pytest.approx(float(h), rel=1e-9)


def test_derivatives_match_metrics_kernel() -> None:
    from thermoscope.calibration._nll import nll_derivatives

    z, y = make_data(5000, 12, seed=4)
    kernel = Derivatives(z, y)
    for beta in (0.2, 1.0, 2.5):
        ref = nll_derivatives(z, y, beta)
        f, g, h = kernel(beta)
        assert f == pytest.approx(ref.nll_sum / ref.n, rel=1e-12)
        assert g == pytest.approx(ref.grad_sum / ref.n, rel=1e-10)
        assert h == pytest.approx(ref.hess_sum / ref.n, rel=1e-10)


def test_gradient_vanishes_at_the_answer() -> None:
    z, y = make_data(20_000, 10, seed=5)
    fit = fit_temperature(z, y)
    _, g, h = Derivatives(z, y)(1.0 / fit.temperature)
    # Machine precision: |g| is at rounding level of the sum of N terms of size ~|z|.
    assert abs(g) < 1e-12 * max(1.0, h)
    assert 3 <= fit.n_iter <= 12


def test_masked_classes_equal_dropping_them() -> None:
    z, y = make_data(1000, 6, seed=6)
    y = np.where(y == 5, 0, y)
    masked = z.copy()
    masked[:, 5] = -np.inf
    assert fit_temperature(masked, y).temperature == pytest.approx(
        fit_temperature(z[:, :5], y).temperature, rel=1e-13
    )


# --------------------------------------------------------------------------- invariants


@st.composite
def datasets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(20, 200))
    c = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.floats(0.3, 6.0))
    z, y = make_data(n, c, scale=scale, true_t=draw(st.floats(0.5, 3.0)), seed=seed)
    return z, y


def _quiet_fit(z: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        # Tiny random sets are sometimes separable; the bound is then the answer.
        warnings.simplefilter("ignore", TemperatureBoundWarning)
        return fit_temperature(z, y).temperature


@settings(max_examples=25)
@given(datasets(), st.floats(0.1, 10.0), st.floats(-50.0, 50.0))
def test_scale_and_shift_invariance(
    data: tuple[np.ndarray, np.ndarray], a: float, b: float
) -> None:
    z, y = data
    t = _quiet_fit(z, y)
    if not 1e-3 < t < 1e3:
        return  # at a bound the answer is the bound, not a scaled optimum
    # softmax(a z / (a T)) = softmax(z / T), and a constant per row changes nothing.
    assert _quiet_fit(a * z, y) == pytest.approx(a * t, rel=1e-9)
    assert _quiet_fit(z + b, y) == pytest.approx(t, rel=1e-9)


@settings(max_examples=25)
@given(datasets(), st.integers(0, 2**32 - 1))
def test_row_and_class_permutation_invariance(
    data: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    z, y = data
    rng = np.random.default_rng(seed)
    rows, cols = rng.permutation(len(y)), rng.permutation(z.shape[1])
    inverse = np.argsort(cols)
    t = _quiet_fit(z, y)
    assert _quiet_fit(z[rows][:, cols], inverse[y[rows]]) == pytest.approx(t, rel=1e-9)


# --------------------------------------------------------------------------- bounds


def test_separable_data_warn_and_return_the_documented_bound() -> None:
    z = np.array([[50.0, 0.0, -3.0], [0.0, 800.0, 1.0], [1.0, 2.0, 3.0]])
    with pytest.warns(SeparableDataWarning, match="perfectly separable.*min_temperature=0.0001"):
        fit = fit_temperature(z, [0, 1, 2])
    assert (fit.temperature, fit.bound) == (1e-4, "lower")
    assert np.isfinite(fit.nll)
    with pytest.warns(SeparableDataWarning):
        scaler = TemperatureScaler(min_temperature=0.01).fit(z, [0, 1, 2])
    assert scaler.temperature_ == 0.01
    probs = scaler.predict_proba(z)  # z / T = 80000: no overflow
    assert np.all(np.isfinite(probs))
    np.testing.assert_array_equal(np.argmax(probs, axis=1), [0, 1, 2])


def test_tied_maximum_is_not_separable() -> None:
    z = np.array([[2.0, 2.0], [0.0, 1.0]])  # row 0 ties: NLL >= ln 2 for every T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.warns(TemperatureBoundWarning) as record:
            fit = fit_temperature(z, [0, 1])
    assert not any(w.category is SeparableDataWarning for w in record)
    assert fit.bound == "lower"


def test_uninformative_logits_hit_the_upper_bound() -> None:
    z = np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])  # every label is the row's minimum
    with pytest.warns(TemperatureBoundWarning, match="max_temperature=100"):
        fit = fit_temperature(z, [0, 1, 0], max_temperature=100.0)
    assert (fit.temperature, fit.bound) == (100.0, "upper")


# --------------------------------------------------------------------------- backends


def test_torch_tensors_give_the_numpy_answer() -> None:
    torch = pytest.importorskip("torch")
    z, y = make_data(3000, 10, seed=7)
    ref = fit_temperature(z, y).temperature
    assert fit_temperature(torch.from_numpy(z), torch.from_numpy(y)).temperature == ref
    scaler = TemperatureScaler().fit(torch.from_numpy(z).float(), torch.from_numpy(y))
    assert scaler.temperature_ == pytest.approx(ref, rel=1e-6)  # float32 input
    out = scaler.transform(torch.from_numpy(z).float())
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32


def test_memmap_is_streamed_and_exact(tmp_path: Path) -> None:
    z, y = make_data(10_000, 10, seed=8)
    np.save(tmp_path / "z.npy", z.astype(np.float32))
    mm = np.load(tmp_path / "z.npy", mmap_mode="r")
    streamed = fit_temperature(mm, y)
    in_memory = fit_temperature(np.asarray(mm), y)
    assert streamed.temperature == pytest.approx(in_memory.temperature, rel=1e-13)


def test_memmap_bad_values_are_reported_with_rows(tmp_path: Path) -> None:
    z, y = make_data(5000, 4, seed=9)
    z[4500, 1] = np.nan
    np.save(tmp_path / "z.npy", z)
    with pytest.raises(ValueError, match=r"`logits` must not contain NaN.*rows 4096\.\.4999"):
        fit_temperature(np.load(tmp_path / "z.npy", mmap_mode="r"), y)


def test_dask_cluster_equals_in_memory() -> None:
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    z, y = make_data(6000, 10, seed=10)
    ref = fit_temperature(z, y)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        dz = da.from_array(z, chunks=(1000, 10))
        dy = da.from_array(y, chunks=1000)
        fit = fit_temperature(dz, dy)
        scaler = TemperatureScaler().fit(dz, dy)
        probs = scaler.predict_proba(dz).compute()
    assert fit.temperature == pytest.approx(ref.temperature, rel=1e-12)
    assert fit.n_iter == ref.n_iter  # one map-reduce per Newton step, same steps
    np.testing.assert_allclose(probs, special.softmax(z / ref.temperature, axis=1), rtol=1e-10)


def test_dask_separable_and_bad_labels() -> None:
    da = pytest.importorskip("dask.array")
    z = da.from_array(np.array([[3.0, 0.0], [0.0, 2.0]]), chunks=1)
    with pytest.warns(SeparableDataWarning):
        assert fit_temperature(z, np.array([0, 1])).temperature == 1e-4
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 1\], got 2"):
        fit_temperature(z, np.array([0, 2]))
    with pytest.raises(ValueError, match="`objective` must be 'nll' for Dask"):
        TemperatureScaler(objective="ece").fit(z, np.array([0, 1]))


def test_import_loads_no_heavy_backend() -> None:
    code = (
        "import sys, thermoscope, thermoscope.calibration, thermoscope.calibration.fit, "
        "thermoscope.calibration.scaler, thermoscope.calibration.dask, "
        "thermoscope.calibration.streaming, thermoscope.calibration.metrics, "
        "thermoscope.calibration.classifier, thermoscope.plots, thermoscope.demos.calibration, "
        "thermoscope.cli.calibrate, thermoscope.cli.demo\n"
        "bad = [m for m in ('torch', 'matplotlib', 'sklearn', 'dask', 'transformers') "
        "if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- estimator


def test_scaler_transform_predict_and_clone() -> None:
    sklearn_base = pytest.importorskip("sklearn.base")
    from sklearn.utils.validation import check_is_fitted

    z, y = make_data(1000, 5, seed=11)
    scaler = TemperatureScaler(max_iter=50)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        scaler.transform(z)
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(scaler)
    scaler.fit(z, y)
    check_is_fitted(scaler)
    t = scaler.temperature_
    np.testing.assert_allclose(scaler.transform(z), z / t, rtol=1e-15)
    np.testing.assert_allclose(scaler.predict_proba(z), special.softmax(z / t, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(scaler.predict(z), np.argmax(z, axis=1))
    twin = sklearn_base.clone(scaler)
    assert twin.get_params() == scaler.get_params()
    assert not hasattr(twin, "temperature_")
    assert twin.set_params(objective="ece").objective == "ece"
    assert repr(twin) == "TemperatureScaler(objective='ece', max_iter=50)"
    assert scaler.n_classes_ == 5
    assert scaler.n_iter_ >= 1


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (np.nan, r"`logits` must not contain NaN, got NaN at index \(1, 0\)"),
        (np.inf, r"`logits` must be finite or -inf \(masked\), got \+inf at index \(1, 0\)"),
    ],
)
def test_predict_refuses_rows_predict_proba_refuses(bad: float, pattern: str) -> None:
    # predict used to take the argmax of any row, so a NaN row became class 0 silently.
    scaler = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
    z = np.array([[0.0, 1.0], [bad, 0.0]])
    for method in (scaler.predict_proba, scaler.predict):
        with pytest.raises(ValueError, match=pattern):
            method(z)
    with pytest.raises(ValueError, match=r"`logits` must keep at least one finite entry"):
        scaler.predict(np.array([[-np.inf, -np.inf]]))
    assert scaler.predict(np.array([[-np.inf, 0.0]])).tolist() == [1]  # masked is allowed


def test_ece_objective_beats_a_dense_grid() -> None:
    from thermoscope.calibration.metrics import expected_calibration_error

    z, y = make_data(3000, 10, seed=12)
    t_nll = TemperatureScaler().fit(z, y).temperature_
    t_ece = TemperatureScaler(objective="ece").fit(z, y).temperature_

    def ece(t: float) -> float:
        return float(expected_calibration_error(special.softmax(z / t, axis=1), y))

    grid = np.geomspace(t_nll / 10, t_nll * 10, 400)
    assert ece(t_ece) <= min(ece(t) for t in grid) + 1e-12
    assert ece(t_ece) <= ece(t_nll)


def test_temperature_for_confidence_hits_the_target() -> None:
    z, _ = make_data(500, 10, seed=13)
    for target in (0.2, 0.5, 0.95):
        t = temperature_for_confidence(z, target)
        assert special.softmax(z / t, axis=1).max(axis=1).mean() == pytest.approx(target, rel=1e-12)
    with pytest.raises(ValueError, match=r"`target` must be a mean confidence in \(0\.1"):
        temperature_for_confidence(z, 0.05)


# --------------------------------------------------------------------------- JSON


def test_json_round_trip_is_atomic(tmp_path: Path) -> None:
    z, y = make_data(500, 4, seed=14)
    scaler = TemperatureScaler(objective="nll", max_iter=30).fit(z, y)
    path = tmp_path / "t.json"
    path.write_text("old contents")
    assert scaler.to_json(path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]  # no temp file left
    data = json.loads(path.read_text())
    assert (data["format"], data["version"]) == ("thermoscope.temperature", 1)
    loaded = TemperatureScaler.from_json(path)
    assert loaded.temperature_ == scaler.temperature_
    assert loaded.get_params() == scaler.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(z), scaler.predict_proba(z))


GOOD = '"format": "thermoscope.temperature", "version": 1'


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{not json", r"must be valid JSON"),
        ("[1.5]", r"must hold a JSON object, got list"),
        ('{"format": "other", "version": 1, "temperature": 1}', r"field `format`"),
        ('{"format": "thermoscope.temperature", "version": 2, "temperature": 1}', "`version`"),
        ("{" + GOOD + "}", r"field `temperature` .* got None"),
        ("{" + GOOD + ', "temperature": -1.0}', r"field `temperature` .* got -1\.0"),
        ("{" + GOOD + ', "temperature": NaN}', r"field `temperature` .* got nan"),
        ("{" + GOOD + ', "temperature": 0}', r"field `temperature` .* got 0"),
        ("{" + GOOD + ', "temperature": "2"}', r"field `temperature` .* got '2'"),
        ("{" + GOOD + ', "temperature": true}', r"field `temperature` .* got True"),
        ("{" + GOOD + ', "temperature": 1, "params": {"bogus": 1}}', r"field `params`"),
        ("{" + GOOD + ', "temperature": 1, "params": {"objective": "x"}}', r"`objective`"),
    ],
)
def test_from_json_rejects_malformed_files(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        TemperatureScaler.from_json(path)
    assert "bad.json" in str(info.value)


def test_from_json_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`path` must be an existing JSON file, got .*nope\.json"):
        TemperatureScaler.from_json(tmp_path / "nope.json")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("logits", "labels", "exc", "pattern"),
    [
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [0, 2],
            ValueError,
            r"`labels` must be class indices in \[0, 1\], got 2 at index 1",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [0, -1],
            ValueError,
            r"`labels` must be class indices in \[0, 1\], got -1",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [0, 0.5],
            TypeError,
            r"`labels` must be integer class indices, got dtype float64",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [True, False],
            TypeError,
            "`labels` must be integer class indices, got dtype bool",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [0, 1, 1],
            ValueError,
            r"`labels` must have shape \(2,\) \(one label per row\), got shape \(3,\)",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0]],
            [[0, 1]],
            ValueError,
            r"`labels` must have shape \(2,\) \(one label per row\), got shape \(1, 2\)",
        ),
        (
            [[1.0, np.nan], [0.0, 1.0]],
            [0, 1],
            ValueError,
            r"`logits` must not contain NaN, got NaN at index \(0, 1\)",
        ),
        ([[1.0, np.inf], [0.0, 1.0]], [0, 1], ValueError, "`logits` must be finite or -inf"),
        (
            [[1.0, -np.inf], [0.0, 1.0]],
            [1, 1],
            ValueError,
            "`logits` must be finite at each row's label",
        ),
        (np.zeros((0, 3)), [], ValueError, r"`logits` must not be empty, got shape \(0, 3\)"),
        ([1.0, 2.0], [0, 1], ValueError, r"`logits` must be a 2-D array \(samples, classes\)"),
        ([[1.0], [2.0]], [0, 0], ValueError, "`logits` must have at least 2 classes"),
        ([["a", "b"]], [0], TypeError, "`logits` must be a numeric"),
    ],
)
def test_bad_input(logits: object, labels: object, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        fit_temperature(logits, labels)


def test_scaler_errors_name_y_and_params() -> None:
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"`y` must be class indices in \[0, 1\], got 5"):
        TemperatureScaler().fit(z, [0, 5])
    with pytest.raises(ValueError, match="`objective` must be one of 'nll', 'ece', got 'mse'"):
        TemperatureScaler(objective="mse").fit(z, [0, 1])
    with pytest.raises(ValueError, match="`n_bins` must be an integer >= 1, got 0"):
        TemperatureScaler(n_bins=0).fit(z, [0, 1])
    with pytest.raises(ValueError, match="`bogus` must be one of the parameters"):
        TemperatureScaler().set_params(bogus=1)
    with pytest.raises(ValueError, match=r"`min_temperature` must be < `max_temperature` \(1\.0\)"):
        fit_temperature(z, [0, 1], min_temperature=2.0, max_temperature=1.0)
    with pytest.raises(ValueError, match="`max_temperature` must be a finite number > 0, got inf"):
        fit_temperature(z, [0, 1], max_temperature=math.inf)
    with pytest.raises(TypeError, match=r"`max_iter` must be an integer >= 1, got 2\.5"):
        fit_temperature(z, [0, 1], max_iter=2.5)
    with pytest.raises(ValueError, match="`max_iter` must be an integer >= 1, got 0"):
        fit_temperature(z, [0, 1], max_iter=0)
