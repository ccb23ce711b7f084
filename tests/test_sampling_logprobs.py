"""`Sampler.sample_with_logprobs`: the four vLLM modes against a float64 reference.

The reference is written from the definitions: ``log_softmax`` in float64 of
the logits as given (raw) or of the warped logits (processed), and the top
entries sorted by value, ties by ascending token id, ``-1`` / ``-inf`` past the
last finite value. Checked on numpy and torch, float64 and float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from backends import needs_torch, torch
from thermoscope.sampling import (
    LOGPROBS_MODES,
    Sampler,
    SampleResult,
    Temperature,
    TopP,
    Typical,
)

KINDS = [
    pytest.param(lib, dtype, id=f"{lib}-{dtype}", marks=[needs_torch] if lib == "torch" else [])
    for lib in ("numpy", "torch")
    for dtype in ("float64", "float32")
]
SAMPLERS = {
    "fused": Sampler.from_options(temperature=0.7, top_k=40, top_p=0.9),
    "fused top-p": Sampler([Temperature(1.5), TopP(0.8)]),
    "plain": Sampler([Typical(0.9), Temperature(0.0)]),
    "none": Sampler(),
}


def make(x: np.ndarray, lib: str, dtype: str):
    arr = x.astype(dtype)
    return torch.from_numpy(arr.copy()) if lib == "torch" else arr


def host(out) -> np.ndarray:
    if torch is not None and isinstance(out, torch.Tensor):
        return out.to(torch.float64).numpy() if out.is_floating_point() else out.numpy()
    return out


def reference_top(values: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.empty((values.shape[0], top), dtype=np.int64)
    vals = np.empty((values.shape[0], top))
    for r, row in enumerate(values):
        order = np.lexsort((np.arange(row.size), -row))[:top]  # value desc, then id asc
        got = np.full(top, -np.inf)
        got[: order.size] = row[order]
        idx = np.full(top, -1)
        idx[: order.size] = order
        vals[r] = got
        ids[r] = np.where(np.isfinite(got), idx, -1)
    return ids, vals


def logits_case() -> np.ndarray:
    rng = np.random.default_rng(33)
    x = np.round(rng.standard_normal((5, 3000)) * 2.5, 1)  # many ties for the top entries
    x[1, ::2] = -np.inf
    x[2, 3:] = -np.inf  # three finite tokens: fewer than `top`
    return x


@pytest.mark.parametrize(("lib", "dtype"), KINDS)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("mode", LOGPROBS_MODES)
def test_modes_against_float64_reference(mode, name, lib, dtype):
    sampler = SAMPLERS[name]
    x = make(logits_case(), lib, dtype)
    seeds = np.arange(5) + 11
    r = sampler.sample_with_logprobs(x, n=6, seed=seeds, step=3, mode=mode, top=7)
    assert isinstance(r, SampleResult)
    assert r.mode == mode
    tokens = host(r.tokens)
    np.testing.assert_array_equal(tokens, host(sampler.sample(x, n=6, seed=seeds, step=3)))
    # The float64 reference, from the values the computation starts from.
    raw = host(x).astype(np.float64)
    warped = host(sampler.logits(x)).astype(np.float64)
    values = {
        "raw_logits": raw,
        "raw_logprobs": special.log_softmax(raw, axis=-1),
        "processed_logits": warped,
        "processed_logprobs": special.log_softmax(warped, axis=-1),
    }[mode]
    want = np.take_along_axis(values, tokens, axis=-1)
    for out in (r.logprobs, r.top_values):
        if lib == "torch":
            assert isinstance(out, torch.Tensor)
            assert out.dtype == getattr(torch, dtype)
        else:
            assert isinstance(out, np.ndarray)
            assert out.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(host(r.logprobs), want, rtol=tol, atol=tol)
    ids, vals = reference_top(values, 7)
    np.testing.assert_array_equal(host(r.top_ids), ids)
    np.testing.assert_allclose(host(r.top_values), vals, rtol=tol, atol=tol)
    assert host(r.top_ids).dtype == np.int64
    if mode == "processed_logprobs":
        # The distribution the tokens were drawn from.
        probs = host(sampler.probs(x))
        np.testing.assert_allclose(
            np.exp(host(r.logprobs)), np.take_along_axis(probs, tokens, -1), rtol=1e-5
        )


def test_shapes_and_defaults():
    s = SAMPLERS["fused"]
    z = np.random.default_rng(1).standard_normal((2, 3, 100))
    r = s.sample_with_logprobs(z, n=4, seed=0)
    assert r.mode == "processed_logprobs"
    assert r.tokens.shape == r.logprobs.shape == (2, 3, 4)
    assert r.top_ids.shape == r.top_values.shape == (2, 3, 0)
    one = s.sample_with_logprobs(z[0, 0], seed=0, top=3)
    assert one.tokens.shape == (1,)
    assert one.top_ids.shape == (3,)
    # With rng=, the Generator's stream (the same tokens as sample with that Generator).
    a = s.sample_with_logprobs(z, n=2, rng=5).tokens
    np.testing.assert_array_equal(a, s.sample(z, n=2, rng=5))


@needs_torch
def test_half_precision_logits_give_float32_values():
    x = torch.randn(3, 200, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    r = SAMPLERS["fused"].sample_with_logprobs(x, seed=1, mode="raw_logprobs", top=2)
    assert r.tokens.dtype == torch.int64
    assert r.logprobs.dtype == torch.float32
    assert r.top_values.dtype == torch.float32
    ref = special.log_softmax(x.to(torch.float64).numpy(), axis=-1)
    np.testing.assert_allclose(
        r.logprobs.numpy(), np.take_along_axis(ref, r.tokens.numpy(), -1), rtol=1e-6, atol=1e-6
    )
