"""Calibration on every backend: numpy's numbers, the input's kind, dtype and device, autograd.

A torch ``probs`` is computed with torch operations on its device (issue 11):
the metrics must give numpy's numbers (1e-6; 1e-5 for float32 tensors), come
back as 0-d tensors of the input's dtype on its device (curves as float64
tensors), keep the autograd graph where the metric is differentiable
(``torch.autograd.gradcheck`` in float64) and never copy the data to the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from backends import BACKENDS, Backend, on_every_backend
from thermoscope.calibration import (
    CalibrationAccumulator,
    TemperatureScaler,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)
from thermoscope.calibration import _torch_metrics as native
from thermoscope.calibration._binning import quantile_edges
from thermoscope.calibration.metrics import Strategy

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

N, C = 400, 5


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits (with a masked entry), their probabilities and labels drawn from softer ones."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, C)) * rng.uniform(0.5, 4.0, size=(N, 1))
    z[3, 1] = -np.inf
    p = _softmax(z)
    y = np.array([rng.choice(C, p=row) for row in _softmax(z / 2)])
    y[3] = 0
    return z, p, y


Z, P, Y = _data()
ZB = np.random.default_rng(1).normal(size=N) * 3  # binary log-odds
PB = 1 / (1 + np.exp(-ZB))
YB = (np.random.default_rng(2).uniform(size=N) < 1 / (1 + np.exp(-ZB / 2))).astype(np.int64)


def _check_scalar(backend: Backend, result: object, expected: float) -> None:
    """``result`` is numpy's ``expected`` in the backend's kind, dtype and device."""
    if backend.is_torch:
        assert isinstance(result, torch.Tensor)
        assert result.ndim == 0
        assert result.dtype == backend.dtype
        assert result.device.type == torch.device(backend.device).type
        got = float(result.detach().to("cpu", torch.float64))
    else:
        assert isinstance(result, float)
        got = result
    assert got == pytest.approx(expected, rel=backend.rtol, abs=1e-12)


def _labels(backend: Backend, y: np.ndarray) -> object:
    return torch.as_tensor(y, device=backend.device) if backend.is_torch else y


# ---------------------------------------------------------------------------
# Same numbers, right kind
# ---------------------------------------------------------------------------


@on_every_backend
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("binary", [False, True])
def test_binned_metrics_match_numpy(backend: Backend, from_logits: bool, binary: bool) -> None:
    x_np = (ZB if from_logits else PB) if binary else (Z if from_logits else P)
    y = YB if binary else Y
    x, labels = backend.array(x_np), _labels(backend, y)
    for strategy in ("uniform", "quantile"):
        for norm in ("l1", "l2", "max"):
            for classwise in (False, True):
                kw: dict[str, Any] = dict(
                    strategy=strategy, norm=norm, classwise=classwise, n_bins=10
                )
                ref = expected_calibration_error(x_np, y, from_logits=from_logits, **kw)
                got = expected_calibration_error(x, labels, from_logits=from_logits, **kw)
                _check_scalar(backend, got, ref)
    ref = maximum_calibration_error(x_np, y, from_logits=from_logits)
    _check_scalar(backend, maximum_calibration_error(x, labels, from_logits=from_logits), ref)
    ref = brier_score(x_np, y, from_logits=from_logits)
    _check_scalar(backend, brier_score(x, labels, from_logits=from_logits), ref)
    ref = negative_log_likelihood(x_np, y, from_logits=from_logits)
    _check_scalar(backend, negative_log_likelihood(x, labels, from_logits=from_logits), ref)


@on_every_backend
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_and_summary_match_numpy(backend: Backend, strategy: Strategy) -> None:
    x, labels = backend.array(Z), _labels(backend, Y)
    ref = reliability_curve(Z, Y, n_bins=8, strategy=strategy, from_logits=True)
    curve = reliability_curve(x, labels, n_bins=8, strategy=strategy, from_logits=True)
    for name in ("edges", "confidence", "accuracy", "count"):
        value = getattr(curve, name)
        if backend.is_torch:
            assert isinstance(value, torch.Tensor)
            assert value.device.type == torch.device(backend.device).type
            assert value.dtype == (torch.int64 if name == "count" else torch.float64)
            value = value.to("cpu").numpy()
        np.testing.assert_allclose(value, getattr(ref, name), rtol=backend.rtol, atol=1e-12)
    summary = calibration_summary(x, labels, n_bins=8, strategy=strategy, from_logits=True)
    expected = calibration_summary(Z, Y, n_bins=8, strategy=strategy, from_logits=True)
    assert summary.n_samples == N
    for key in ("accuracy", "ece", "ece_l2", "mce", "nll", "brier"):
        _check_scalar(backend, getattr(summary, key), getattr(expected, key))
    for key, value in expected.as_dict().items():
        assert isinstance(summary.as_dict()[key], float)
        assert summary.as_dict()[key] == pytest.approx(value, rel=backend.rtol, abs=1e-12)


def test_float64_tensors_bin_exactly_like_numpy() -> None:
    # Same float64 edges, same [e_k, e_{k+1}) rule: identical counts, even on the edges.
    edges = np.arange(16) / 15
    conf = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 2)])
    conf = np.clip(conf, 0.5, 1.0)  # a top-label confidence of 2 classes lies in [0.5, 1]
    p = np.stack([conf, 1 - conf], axis=1)
    y = np.arange(conf.size) % 2
    ref = reliability_curve(p, y, n_bins=15)
    got = reliability_curve(torch.from_numpy(p), torch.from_numpy(y), n_bins=15)
    assert got.count.tolist() == ref.count.tolist()
    np.testing.assert_array_equal(got.confidence.numpy(), ref.confidence)
    for strategy in ("uniform", "quantile"):
        a = expected_calibration_error(p, y, strategy=strategy)
        b = expected_calibration_error(torch.from_numpy(p), torch.from_numpy(y), strategy=strategy)
        assert float(b) == pytest.approx(a, rel=1e-13, abs=1e-16)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
@pytest.mark.parametrize("n_bins", [1, 3, 7, 15])
def test_quantile_edges_on_device_are_numpys_bit_for_bit(n: int, n_bins: int) -> None:
    rng = np.random.default_rng(n * 31 + n_bins)
    values = np.round(rng.uniform(size=n) ** 3, 3)  # many ties
    got = native.quantile_edges(torch.from_numpy(values), n_bins).numpy()
    np.testing.assert_array_equal(got, quantile_edges(values, n_bins))


@pytest.mark.parametrize("labels", [Y.tolist(), Y, torch.from_numpy(Y), torch.from_numpy(Y * 1.0)])
def test_labels_of_any_kind_give_the_same_answer(labels: object) -> None:
    ref = expected_calibration_error(Z, Y, from_logits=True)
    assert float(expected_calibration_error(torch.from_numpy(Z), labels, from_logits=True)) == (
        pytest.approx(ref, rel=1e-12)
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_input_comes_back_in_its_dtype(dtype: str) -> None:
    x = torch.from_numpy(Z).to(getattr(torch, dtype))
    ref = negative_log_likelihood(x.double().numpy(), Y, from_logits=True)
    got = negative_log_likelihood(x, torch.from_numpy(Y), from_logits=True)
    assert got.dtype == x.dtype
    assert float(got) == pytest.approx(ref, rel=1e-2)
    assert expected_calibration_error(x, Y, from_logits=True).dtype == x.dtype


def test_torch_metrics_never_copy_the_data_to_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # Valid input: only single booleans of the checks reach the host, never an array.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tensor was copied to the host")

    for name in ("numpy", "__array__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    z = torch.from_numpy(Z.copy()).requires_grad_(True)
    y = torch.from_numpy(Y.copy())
    p = torch.softmax(z.detach(), dim=1)
    for strategy in ("uniform", "quantile"):
        expected_calibration_error(z, y, strategy=strategy, from_logits=True)
        expected_calibration_error(p, y, strategy=strategy, classwise=True)
        reliability_curve(p, y, strategy=strategy)
        calibration_summary(z, y, strategy=strategy, from_logits=True)
    brier_score(p, y)
    negative_log_likelihood(z, y, from_logits=True, temperature=torch.tensor(1.5))
    scaler = TemperatureScaler()
    scaler.temperature_ = 2.0
    scaler.transform(z)
    scaler.predict_proba(z)
    scaler.predict(z)


# ---------------------------------------------------------------------------
# Errors: the numpy messages, word for word
# ---------------------------------------------------------------------------


BAD = [
    (np.zeros((2, 2, 2)), [0, 1], False),
    (np.zeros((3, 1)), [0, 0, 0], False),
    (P[:4], [0, 1, 2], False),
    (P[:4], [0, 1, 2, 5], False),
    (P[:4], [0, 1, 2, -1], False),
    (P[:4], [0.0, 1.5, 2.0, 1.0], False),
    (P[:4], [True, False, True, True], False),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), [0, 1], False),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), [0, 1], False),
    (np.array([[np.nan, 0.5], [0.5, 0.5]]), [0, 1], False),
    (np.array([0.5, 1.5]), [0, 1], False),
    (np.array([0.5, np.nan]), [0, 1], False),
    (np.array([[0.0, np.inf], [1.0, 0.0]]), [0, 1], True),
    (np.array([[-np.inf, -np.inf], [1.0, 0.0]]), [0, 1], True),
    (np.array([0.0, np.nan]), [0, 1], True),
    (np.zeros((0, 3)), [], False),
]


@pytest.mark.parametrize(("x", "y", "from_logits"), BAD)
def test_errors_are_numpys(x: np.ndarray, y: list, from_logits: bool) -> None:
    with pytest.raises((ValueError, TypeError)) as expected:
        expected_calibration_error(x, y, from_logits=from_logits)
    labels = torch.tensor(y) if len(y) else torch.zeros(0, dtype=torch.int64)
    for given in (labels, y):
        with pytest.raises(expected.type) as got:
            expected_calibration_error(torch.from_numpy(x), given, from_logits=from_logits)
        # Word for word, except the dtype a labels message names: a tensor's own
        # (torch.float32) against the numpy array a list becomes (float64).
        assert str(got.value).split(" got dtype")[0] == str(expected.value).split(" got dtype")[0]


def test_temperature_argument_errors() -> None:
    z, y = torch.from_numpy(Z), torch.from_numpy(Y)
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0, got -1\.0"):
        negative_log_likelihood(Z, Y, from_logits=True, temperature=-1.0)
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0, got 0\.0"):
        negative_log_likelihood(z, y, from_logits=True, temperature=torch.tensor(0.0))
    with pytest.raises(ValueError, match=r"`temperature` must be 1\.0 unless `from_logits=True`"):
        negative_log_likelihood(P, Y, temperature=2.0)
    with pytest.raises(ValueError, match=r"`temperature` must be 1\.0 unless `from_logits=True`"):
        negative_log_likelihood(torch.from_numpy(P), y, temperature=torch.tensor(2.0))
    with pytest.raises(TypeError, match=r"a tensor temperature needs torch logits"):
        negative_log_likelihood(Z, Y, from_logits=True, temperature=torch.tensor(2.0))
    with pytest.raises(ValueError, match=r"one value per row, shape \(400,\), got shape \(3,\)"):
        negative_log_likelihood(z, y, from_logits=True, temperature=torch.ones(3))
    with pytest.raises(ValueError, match=r"one value per row, shape \(400,\), got shape \(2,\)"):
        negative_log_likelihood(Z, Y, from_logits=True, temperature=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"`temperature` must be a finite number > 0, got 'x'"):
        negative_log_likelihood(Z, Y, from_logits=True, temperature="x")


# ---------------------------------------------------------------------------
# Autograd
# ---------------------------------------------------------------------------


def test_nll_gradcheck_in_logits_and_temperature() -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, dtype=torch.float64, generator=gen) * 2
    z[1, 2] = -torch.inf  # masked: gradient exactly 0 there
    z.requires_grad_(True)
    y = torch.tensor([0, 1, 3, 2, 0, 1])
    t = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.8, 1.3], dtype=torch.float64, requires_grad=True)

    def nll(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return negative_log_likelihood(z, y, from_logits=True, temperature=t)

    assert torch.autograd.gradcheck(nll, (z, t))
    assert torch.autograd.gradcheck(nll, (z, rows))
    (grad,) = torch.autograd.grad(nll(z, t), z)
    assert grad[1, 2] == 0.0
    # Binary log-odds and probabilities are differentiable too.
    zb = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    yb = torch.tensor([0, 1, 1, 0, 1])
    assert torch.autograd.gradcheck(
        lambda zb, t: negative_log_likelihood(zb, yb, from_logits=True, temperature=t), (zb, t)
    )
    p = torch.softmax(torch.randn(5, 3, dtype=torch.float64, generator=gen), dim=1)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: negative_log_likelihood(p, yb), (p,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nll_with_tensor_temperature_is_the_classic_recipe_loss(dtype: torch.dtype) -> None:
    z = torch.from_numpy(np.nan_to_num(Z, neginf=-1e4)).to(dtype).requires_grad_(True)
    y = torch.from_numpy(Y)
    t = torch.tensor(1.5, dtype=dtype, requires_grad=True)
    ours = negative_log_likelihood(z, y, from_logits=True, temperature=t)
    assert ours.dtype == dtype
    assert ours.grad_fn is not None
    grads = torch.autograd.grad(ours, (z, t))
    z2, t2 = z.detach().double().requires_grad_(True), t.detach().double().requires_grad_(True)
    theirs = torch.nn.functional.cross_entropy(z2 / t2, y)
    ref = torch.autograd.grad(theirs, (z2, t2))
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=tol)
    for g, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(g.double(), r, rtol=tol, atol=tol * 1e-2)


def test_brier_and_summary_keep_the_graph() -> None:
    z = torch.from_numpy(Z).requires_grad_(True)
    y = torch.from_numpy(Y)
    assert brier_score(z, y, from_logits=True).grad_fn is not None
    nll: Any = calibration_summary(z, y, from_logits=True).nll
    (grad,) = torch.autograd.grad(nll, z)
    assert torch.isfinite(grad).all()
    zs = torch.from_numpy(np.nan_to_num(Z[:6], neginf=-5.0)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: brier_score(z, y[:6], from_logits=True), (zs,))


def test_scaler_transform_and_predict_proba_are_native_and_differentiable() -> None:
    scaler = TemperatureScaler().fit(Z, Y)
    t = scaler.temperature_
    for dtype in (torch.float32, torch.float64):
        z = torch.from_numpy(Z).to(dtype).requires_grad_(True)
        out = scaler.transform(z)
        assert out.dtype == dtype
        assert out.grad_fn is not None
        np.testing.assert_allclose(out.detach().double().numpy(), Z / t, rtol=1e-6)
        probs = scaler.predict_proba(z)
        assert probs.dtype == dtype
        assert probs.grad_fn is not None
        np.testing.assert_allclose(
            probs.detach().double().numpy(), scaler.predict_proba(Z), rtol=1e-5, atol=1e-7
        )
        pred = scaler.predict(z)
        assert isinstance(pred, torch.Tensor)
        assert pred.dtype == torch.int64
        np.testing.assert_array_equal(pred.numpy(), scaler.predict(Z))
    z = torch.from_numpy(np.nan_to_num(Z, neginf=-30.0)[:8]).requires_grad_(True)
    assert torch.autograd.gradcheck(scaler.predict_proba, (z,))
    assert torch.autograd.gradcheck(scaler.transform, (z,))


def test_temperature_scaled_module_gradcheck() -> None:
    from thermoscope.calibration.torch_module import TemperatureScaled

    gen = torch.Generator().manual_seed(3)
    net = torch.nn.Linear(4, 3).double()
    x = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    scaled = TemperatureScaled(net, temperature=1.7)
    assert torch.autograd.gradcheck(scaled, (x,))
    loss = negative_log_likelihood(scaled(x), torch.tensor([0, 1, 2, 0, 1]), from_logits=True)
    loss.backward()
    assert net.weight.grad is not None
    assert torch.isfinite(net.weight.grad).all()


# ---------------------------------------------------------------------------
# Host-side by design: the streaming accumulator keeps host sums
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.is_torch], ids=str)
def test_accumulator_reduces_tensor_chunks_on_their_device(backend: Backend) -> None:
    ref = CalibrationAccumulator(from_logits=True)
    acc = CalibrationAccumulator(from_logits=True)
    for lo in range(0, N, 150):
        ref.update(Z[lo : lo + 150], Y[lo : lo + 150], temperature=1.3)
        acc.update(
            backend.array(Z[lo : lo + 150]), _labels(backend, Y[lo : lo + 150]), temperature=1.3
        )
    got, expected = acc.compute(), ref.compute()
    assert got.curve.count.tolist() == expected.curve.count.tolist()
    for key, value in expected.as_dict().items():
        assert got.as_dict()[key] == pytest.approx(value, rel=backend.rtol, abs=1e-12)


# ---------------------------------------------------------------------------
# CUDA (where there is one)
# ---------------------------------------------------------------------------


@needs_cuda
def test_cuda_metrics_stay_on_device_with_gradient() -> None:
    z = torch.from_numpy(Z).to("cuda").requires_grad_(True)
    t = torch.tensor(1.4, device="cuda", dtype=torch.float64, requires_grad=True)
    y = torch.from_numpy(Y).to("cuda")
    nll = negative_log_likelihood(z, y, from_logits=True, temperature=t)
    assert nll.device.type == "cuda"
    nll.backward()
    assert z.grad is not None
    assert z.grad.device.type == "cuda"
    assert t.grad is not None
    assert t.grad.device.type == "cuda"
    ref = negative_log_likelihood(Z, Y, from_logits=True, temperature=1.4)
    assert float(nll.detach()) == pytest.approx(ref, rel=1e-12)
    for strategy in ("uniform", "quantile"):
        ece = expected_calibration_error(z, y, strategy=strategy, from_logits=True)
        assert ece.device.type == "cuda"
        assert float(ece.detach()) == pytest.approx(
            expected_calibration_error(Z, Y, strategy=strategy, from_logits=True), rel=1e-12
        )
        curve = reliability_curve(z, y, strategy=strategy, from_logits=True)
        assert curve.count.device.type == "cuda"
    summary_ece: object = calibration_summary(z, Y, from_logits=True).ece
    assert isinstance(summary_ece, torch.Tensor)
    assert summary_ece.device.type == "cuda"


@needs_cuda
def test_cuda_scaler_and_module() -> None:
    from thermoscope.calibration.torch_module import TemperatureScaled

    scaler = TemperatureScaler().fit(torch.from_numpy(Z).to("cuda"), torch.from_numpy(Y))
    assert scaler.temperature_ == pytest.approx(TemperatureScaler().fit(Z, Y).temperature_)
    z = torch.from_numpy(Z).float().to("cuda")
    for out in (scaler.transform(z), scaler.predict_proba(z), scaler.predict(z)):
        assert out.device.type == "cuda"
    net = torch.nn.Linear(4, 3).to("cuda")
    x = torch.randn(50, 4, device="cuda")
    y = torch.randint(0, 3, (50,), device="cuda")
    scaled = TemperatureScaled(net).to("cuda").fit([(x[:25], y[:25]), (x[25:], y[25:])])
    assert scaled(x).device.type == "cuda"


def test_nll_temperature_is_the_nll_of_divided_logits_on_every_input_kind() -> None:
    import dask.array as da

    ref = negative_log_likelihood(Z / 1.7, Y, from_logits=True)
    assert negative_log_likelihood(Z, Y, from_logits=True, temperature=1.7) == pytest.approx(
        ref, rel=1e-13
    )
    rows = np.full(N, 1.7)
    assert negative_log_likelihood(Z, Y, from_logits=True, temperature=rows) == pytest.approx(
        ref, rel=1e-13
    )
    chunked = da.from_array(Z, chunks=(100, C))
    assert negative_log_likelihood(chunked, Y, from_logits=True, temperature=1.7) == (
        pytest.approx(ref, rel=1e-13)
    )
    with pytest.raises(TypeError, match=r"`temperature` must be a number for Dask arrays"):
        negative_log_likelihood(chunked, Y, from_logits=True, temperature=rows)
