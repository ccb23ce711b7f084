"""Batch-invariant seeded draws: a row's token depends on its logits, seed and step only.

The same row with the same seed and step is drawn alone, in a batch of 1,000
copies with one seed each, in batches of 64 among other rows and seeds, and
in reversed batch order: the tokens are the same every time, on numpy and on
torch, and the two libraries agree.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from backends import needs_torch, torch
from thermoscope.sampling import Epsilon, MinP, Sampler, Temperature, TopK, TopP, Typical

VOCAB = 2048
SEEDS = 1000
ALONE = 60  # seeds also drawn in a batch of one row

SAMPLERS = {
    "fused top-k": Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9),
    "fused top-p": Sampler([TopP(0.9)]),
    "fused min-p": Sampler([MinP(0.05), Temperature(1.2)], order="as_given"),
    "plain temperature": Sampler([Temperature(0.8), Epsilon(1e-4)]),
    "plain typical": Sampler([TopK(200), Typical(0.9)]),
}


def pool(dtype) -> np.ndarray:
    """Row 0 is the row under test; rows 1.. are other requests (zipf-shaped)."""
    rng = np.random.default_rng(2024)
    rank = rng.permuted(np.tile(np.arange(1, VOCAB + 1), (200, 1)), axis=1)
    x = -1.2 * np.log(rank) + 0.2 * rng.standard_normal((200, VOCAB))
    x[5, : VOCAB // 2] = -np.inf  # a masked request among the others
    return x.astype(dtype)


def lib(x: np.ndarray, kind: str):
    return torch.from_numpy(x.copy()) if kind == "torch" else x


def host(out) -> np.ndarray:
    return out.numpy() if torch is not None and isinstance(out, torch.Tensor) else out


def draws(sampler: Sampler, dtype, kind: str) -> np.ndarray:
    """The row under test's token for seeds 0..SEEDS-1 (step = seed % 7), checked every way."""
    x = pool(dtype)
    row = x[0]
    seeds = np.arange(SEEDS)
    steps = seeds % 7
    # One batch of SEEDS copies of the row, one seed each.
    copies = host(sampler.sample(lib(np.tile(row, (SEEDS, 1)), kind), seed=seeds, step=steps))[:, 0]
    # Batches of 64: 32 copies of the row at random places among other rows and seeds.
    rng = np.random.default_rng(0)
    for start in range(0, SEEDS, 32):
        mine = seeds[start : start + 32]
        at = np.sort(rng.choice(64, size=mine.size, replace=False))
        others = rng.integers(1, x.shape[0], size=64)
        batch = x[others].copy()
        batch[at] = row
        batch_seeds = rng.integers(0, 2**63, size=64)
        batch_seeds[at] = mine
        batch_steps = rng.integers(0, 1000, size=64)
        batch_steps[at] = mine % 7
        got = host(sampler.sample(lib(batch, kind), seed=batch_seeds, step=batch_steps))[:, 0]
        np.testing.assert_array_equal(got[at], copies[start : start + 32])
        back = host(
            sampler.sample(lib(batch[::-1], kind), seed=batch_seeds[::-1], step=batch_steps[::-1])
        )[::-1, 0]
        np.testing.assert_array_equal(back, got)
    # A batch of one row, and a 1-D row.
    for s in range(ALONE):
        alone = host(sampler.sample(lib(row[None], kind), seed=s, step=s % 7))[0, 0]
        assert alone == copies[s]
    flat = host(sampler.sample(lib(row, kind), n=1, seed=ALONE, step=ALONE % 7))
    assert flat.shape == (1,)
    assert flat[0] == copies[ALONE]
    return copies


CASES = [
    (name, dtype)
    for name in sorted(SAMPLERS)
    for dtype in (np.float32, np.float64)
    if not (name == "plain typical" and dtype == np.float32)  # sorts every row: slow
]


@pytest.mark.parametrize(
    ("name", "dtype"), CASES, ids=[f"{n}-{np.dtype(d).name}" for n, d in CASES]
)
def test_batch_invariance_on_numpy(name, dtype):
    on_numpy = numpy_draws(name, dtype)
    assert len(np.unique(on_numpy)) > 1  # the seeds really draw different tokens


@needs_torch
@pytest.mark.parametrize(
    ("name", "dtype"), CASES, ids=[f"{n}-{np.dtype(d).name}" for n, d in CASES]
)
def test_batch_invariance_on_torch_and_agreement_with_numpy(name, dtype):
    on_torch = draws(SAMPLERS[name], dtype, "torch")
    np.testing.assert_array_equal(on_torch, numpy_draws(name, dtype))


@functools.cache
def numpy_draws(name: str, dtype: type) -> np.ndarray:
    """The numpy draws, computed once for both tests above."""
    return draws(SAMPLERS[name], dtype, "numpy")


def test_n_draws_are_the_first_n_of_more():
    """Draw j of a row depends on (seed, step, j): asking for more draws keeps the first ones."""
    x = pool(np.float64)[:3]
    s = SAMPLERS["fused top-k"]
    few = s.sample(x, n=3, seed=[1, 2, 3], step=4)
    many = s.sample(x, n=10, seed=[1, 2, 3], step=4)
    np.testing.assert_array_equal(many[:, :3], few)
