"""Parity with transformers' logits warpers: same kept tokens, same probabilities.

Random logits include planted ties, -inf entries and float16 values. Where the
cut itself falls on tied values, transformers keeps an arbitrary subset of the
ties (whatever its sort returns first) and thermoscope keeps them all: those
cases check the documented tie policy instead of equality.

Every case runs on numpy and on torch CPU tensors (each warper's torch
kernels), in float32, float64 and float16: the same kept tokens, the output
of the input's kind and dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from thermoscope.sampling import Epsilon, MinP, Sampler, Temperature, TopK, TopP, Typical
from thermoscope.sampling._input import prepare

torch = pytest.importorskip("torch")
lp = pytest.importorskip("transformers.generation.logits_process")

LIBS = ["numpy", "torch"]


def as_lib(x: np.ndarray, lib: str):
    return torch.from_numpy(x.copy()) if lib == "torch" else x


def host(out, like) -> np.ndarray:
    """A result as numpy, after checking it is of ``like``'s kind and dtype."""
    if isinstance(like, torch.Tensor):
        assert isinstance(out, torch.Tensor)
        assert out.dtype == like.dtype
        assert out.device == like.device
        return out.to(torch.float64).numpy()
    assert isinstance(out, np.ndarray)
    assert out.dtype == like.dtype
    return out


def make_logits(seed: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, vocab = int(rng.integers(1, 6)), int(rng.choice([7, 50, 300]))
    x = rng.standard_normal((rows, vocab)) * rng.choice([0.5, 2.0, 4.0])
    # Planted ties: a few tokens copy another token's value.
    src = rng.integers(0, vocab, size=max(1, vocab // 10))
    dst = rng.integers(0, vocab, size=src.size)
    x[:, dst] = x[:, src]
    if seed % 3 == 0:
        x[rng.random(x.shape) < 0.2] = -np.inf
        x[:, int(rng.integers(vocab))] = 1.0
    return x.astype(dtype)


def theirs(warper, x: np.ndarray) -> np.ndarray:
    # float16 logits: thermoscope computes in float32, so transformers gets the same float32 values.
    scores = torch.from_numpy(x.astype(np.float32))
    ids = torch.zeros((x.shape[0], 1), dtype=torch.long)
    return warper(ids, scores).numpy()


def probs(z: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(z, dtype=np.float64)), dim=-1).numpy()


def check(ours: np.ndarray, ref: np.ndarray, values: np.ndarray) -> bool:
    """Assert parity; return False when the cut fell on tied values (policy checked instead)."""
    ours_kept, ref_kept = np.isfinite(ours), np.isfinite(ref)
    cut_on_tie = False
    for row in range(values.shape[0]):
        v = values[row]
        finite = np.isfinite(v)
        kept_vals = set(v[ref_kept[row]].tolist())
        dropped_vals = set(v[finite & ~ref_kept[row]].tolist())
        cut_on_tie |= bool(kept_vals & dropped_vals)
    if cut_on_tie:
        # Tie policy: everything transformers keeps is kept, and every extra
        # token ties with a value transformers kept.
        assert np.all(ours_kept[ref_kept])
        for row in range(values.shape[0]):
            extra = ours_kept[row] & ~ref_kept[row]
            assert set(values[row][extra].tolist()) <= set(values[row][ref_kept[row]].tolist())
        return False
    np.testing.assert_array_equal(ours_kept, ref_kept)
    np.testing.assert_allclose(probs(ours), probs(ref), rtol=0, atol=1e-6)
    return True


CASES = [
    ("temperature", lambda: Temperature(0.7), lambda: lp.TemperatureLogitsWarper(0.7)),
    ("top_k", lambda: TopK(5), lambda: lp.TopKLogitsWarper(5)),
    (
        "top_k_min_keep",
        lambda: TopK(2, min_tokens_to_keep=4),
        lambda: lp.TopKLogitsWarper(2, min_tokens_to_keep=4),
    ),
    ("top_p", lambda: TopP(0.8), lambda: lp.TopPLogitsWarper(0.8)),
    ("top_p_low", lambda: TopP(0.3), lambda: lp.TopPLogitsWarper(0.3)),
    (
        "top_p_min_keep",
        lambda: TopP(0.3, min_tokens_to_keep=3),
        lambda: lp.TopPLogitsWarper(0.3, min_tokens_to_keep=3),
    ),
    ("min_p", lambda: MinP(0.1), lambda: lp.MinPLogitsWarper(0.1)),
    (
        "min_p_min_keep",
        lambda: MinP(0.5, min_tokens_to_keep=3),
        lambda: lp.MinPLogitsWarper(0.5, min_tokens_to_keep=3),
    ),
    ("typical", lambda: Typical(0.7), lambda: lp.TypicalLogitsWarper(0.7)),
    (
        "typical_low",
        lambda: Typical(0.2, min_tokens_to_keep=2),
        lambda: lp.TypicalLogitsWarper(0.2, min_tokens_to_keep=2),
    ),
    ("epsilon", lambda: Epsilon(0.02), lambda: lp.EpsilonLogitsWarper(0.02)),
    (
        "epsilon_min_keep",
        lambda: Epsilon(0.3, min_tokens_to_keep=3),
        lambda: lp.EpsilonLogitsWarper(0.3, min_tokens_to_keep=3),
    ),
]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize(("name", "ours", "ref"), CASES, ids=[c[0] for c in CASES])
def test_single_warper_parity(name, ours, ref, dtype, lib):
    exact = 0
    for seed in range(40):
        x = make_logits(seed, dtype)
        xin = as_lib(x, lib)
        warper = ours()
        warped = host(warper(xin), xin)
        if dtype == "float16":
            # float16 in gives float16 out; the computation itself runs in float32.
            rows = prepare(xin)
            inner = warper.apply(rows.z, rows.batch_shape)
            inner = inner.numpy() if lib == "torch" else inner
            np.testing.assert_array_equal(np.isfinite(warped), np.isfinite(inner))
            warped = inner
        exact += check(np.asarray(warped, dtype=np.float64), theirs(ref(), x), x.astype(np.float64))
    # Most cases have no tie at the cut, so equality was really exercised.
    assert exact >= 25


def test_typical_can_drop_top_token_like_transformers():
    x = np.log(np.array([[0.4, 0.2, 0.2, 0.19, 0.01]]))
    np.testing.assert_array_equal(
        np.isfinite(Typical(0.5)(x)), np.isfinite(theirs(lp.TypicalLogitsWarper(0.5), x))
    )


def test_torch_input_matches_transformers_directly():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((4, 100)).astype(np.float32))
    ids = torch.zeros((4, 1), dtype=torch.long)
    ours = TopP(0.9)(x)
    assert isinstance(ours, torch.Tensor)
    ref = lp.TopPLogitsWarper(0.9)(ids, x)
    assert torch.equal(torch.isfinite(ours), torch.isfinite(ref))


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("seed", range(12))
def test_chain_parity_with_logits_processor_list(seed, lib):
    rng = np.random.default_rng(100 + seed)
    x = (rng.standard_normal((6, 500)) * 3).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = -np.inf
    ref_chain = lp.LogitsProcessorList(
        [
            lp.TemperatureLogitsWarper(0.7),
            lp.TopKLogitsWarper(50),
            lp.TopPLogitsWarper(0.9),
            lp.MinPLogitsWarper(0.05),
            lp.TypicalLogitsWarper(0.95),
            lp.EpsilonLogitsWarper(3e-4),
        ]
    )
    ids = torch.zeros((6, 1), dtype=torch.long)
    ref = ref_chain(ids, torch.from_numpy(x)).numpy()
    # Given in a scrambled order: the default order is transformers' order.
    ours = Sampler(
        [Epsilon(3e-4), MinP(0.05), TopP(0.9), Typical(0.95), TopK(50), Temperature(0.7)]
    )
    xin = as_lib(x, lib)
    check(host(ours.logits(xin), xin).astype(np.float64), ref, x.astype(np.float64))
    np.testing.assert_allclose(host(ours.probs(xin), xin), probs(ref), atol=1e-6)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("seed", range(6))
def test_fused_chain_parity(seed, lib):
    """The chain the fused path runs (temperature, top-k, top-p) at a real vocabulary size."""
    rng = np.random.default_rng(200 + seed)
    x = (rng.standard_normal((3, 5000)) * 2.5).astype(np.float32)
    ids = torch.zeros((3, 1), dtype=torch.long)
    ref = lp.LogitsProcessorList(
        [lp.TemperatureLogitsWarper(0.7), lp.TopKLogitsWarper(50), lp.TopPLogitsWarper(0.9)]
    )(ids, torch.from_numpy(x)).numpy()
    ours = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
    xin = as_lib(x, lib)
    np.testing.assert_array_equal(np.isfinite(host(ours.logits(xin), xin)), np.isfinite(ref))
    np.testing.assert_allclose(host(ours.probs(xin), xin), probs(ref), atol=1e-6)
    # The values themselves are transformers' (the same float32 division).
    np.testing.assert_array_equal(host(ours.logits(xin), xin), ref)
