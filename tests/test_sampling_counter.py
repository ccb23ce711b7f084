"""Counter-based uniforms and the torch inverse-CDF draw.

``uniforms`` must be Philox4x32-10 exactly (known-answer vectors), a function
of each row's own ``(seed, step, j)`` only, bit-identical between numpy and
torch, and uniform; ``draw_torch`` must return :func:`draw`'s positions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from backends import needs_torch, torch
from thermoscope.sampling import _counter
from thermoscope.sampling._counter import uniforms
from thermoscope.sampling._draw import draw, draw_torch, fixed_point_bits

_MASK = 0xFFFFFFFF
LIBS = ["numpy", pytest.param("torch", marks=needs_torch)]
_TOP = 2**63 - 1
cuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs CUDA")


def _philox_reference(ctr: list[int], key: list[int], rounds: int = 10) -> list[int]:
    """Philox4x32 in Python integers, transcribed from Random123's philox.h."""
    c, k = list(ctr), list(key)
    for _ in range(rounds):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & _MASK, (p0 >> 32) ^ c[3] ^ k[1], p0 & _MASK]
        k = [(k[0] + 0x9E3779B9) & _MASK, (k[1] + 0xBB67AE85) & _MASK]
    return c


def _uniform_reference(seed: int, step: int, j: int) -> float:
    """The documented counter layout and 53-bit recipe, in Python integers."""
    seed, step, k = seed % 2**64, step % 2**64, j // 2
    x = _philox_reference(
        [k & _MASK, k >> 32, step & _MASK, step >> 32], [seed & _MASK, seed >> 32]
    )
    a, b = (x[0], x[1]) if j % 2 == 0 else (x[2], x[3])
    return ((a >> 5) * 2**26 + (b >> 6)) / 2**53


def _philox_words(ctr: tuple[int, ...], key: tuple[int, ...], lib: str) -> tuple[int, ...]:
    """The module's Philox on one counter, through numpy or torch."""
    if lib == "numpy":
        words = [np.full((1, 1), w, dtype=np.int64) for w in (*ctr, *key)]
        m_low, weyl, xp, flip = _counter._M_LOW, _counter._WEYL, np, None
    else:
        words = [torch.full((1, 1), w, dtype=torch.int64) for w in (*ctr, *key)]
        m_low, weyl, _ = _counter._torch_constants(torch.device("cpu"))
        xp, flip = torch, torch
    c0, c1, c2, c3, k0, k1 = words
    keys = (xp.stack([k0, k1]) + weyl) & _MASK
    pair, rev = _counter._philox(xp.stack([c0, c2]), xp.stack([c3, c1]), keys, m_low, flip)
    return int(pair[0, 0, 0]), int(rev[1, 0, 0]), int(pair[1, 0, 0]), int(rev[0, 0, 0])


# Random123 kat_vectors, "philox4x32 10" lines: counter, key, expected output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((_MASK,) * 4, (_MASK,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(
    lib: str, ctr: tuple[int, ...], key: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    assert _philox_reference(list(ctr), list(key)) == list(expected)
    assert _philox_words(ctr, key, lib) == expected


def test_uniforms_match_python_reference() -> None:
    seeds = [0, 1, 12345, 2**32 - 1, 2**32, _TOP, _TOP - 1, -1, -(2**63)]
    steps = [0, 1, 2**32 - 1, 2**32 + 5, _TOP, -1]
    s, t = np.array(seeds * len(steps)), np.repeat(steps, len(seeds))
    got = uniforms(s, t, 5)
    want = [
        [_uniform_reference(int(a), int(b), j) for j in range(5)] for a, b in zip(s, t, strict=True)
    ]
    np.testing.assert_array_equal(got, want)


@needs_torch
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1001])
def test_numpy_and_torch_cpu_are_bit_identical(n: int) -> None:
    rng = np.random.default_rng(n)
    seeds = np.concatenate(
        [rng.integers(0, 2**63, 40), [0, 1, _TOP, _TOP - 1, _TOP - 2**32, 2**32, -5]]
    )
    steps = np.concatenate([rng.integers(0, 2**20, 40), [0, _TOP, 3, 2**32, 2**33 + 1, 0, 9]])
    a = uniforms(seeds, steps, n)
    b = uniforms(torch.from_numpy(seeds), torch.from_numpy(steps), n)
    assert a.dtype == np.float64
    assert b.dtype == torch.float64
    assert a.shape == tuple(b.shape) == (len(seeds), n)
    assert np.array_equal(a.view(np.int64), b.numpy().view(np.int64))


def test_values_are_53_bit_fractions_in_unit_interval() -> None:
    u = uniforms(np.arange(50), np.zeros(50, dtype=np.int64), 2000)
    scaled = u * 2.0**53
    assert np.array_equal(scaled, np.floor(scaled))
    assert u.min() >= 0.0
    assert u.max() < 1.0


@needs_torch
def test_row_depends_only_on_its_own_seed_step_and_index() -> None:
    rng = np.random.default_rng(7)
    seeds = rng.integers(0, 2**63, 64)
    steps = rng.integers(0, 1000, 64)
    batch = uniforms(seeds, steps, 9)
    alone = np.concatenate([uniforms(seeds[i : i + 1], steps[i : i + 1], 9) for i in range(64)])
    backwards = uniforms(seeds[::-1], steps[::-1], 9)[::-1]
    assert np.array_equal(batch, alone)
    assert np.array_equal(batch, backwards)
    assert np.array_equal(batch[:, :4], uniforms(seeds, steps, 4))  # prefix of the row
    tb = uniforms(torch.from_numpy(seeds[::-1].copy()), torch.from_numpy(steps[::-1].copy()), 9)
    assert np.array_equal(batch, tb.numpy()[::-1])


@needs_torch
def test_scalar_step_broadcasts() -> None:
    seeds = np.array([3, 4, 5])
    same = uniforms(seeds, np.full(3, 11), 4)
    assert np.array_equal(uniforms(seeds, 11, 4), same)
    assert np.array_equal(uniforms(torch.from_numpy(seeds), 11, 4).numpy(), same)


@pytest.mark.parametrize("lib", LIBS)
def test_slicing_does_not_change_values(lib: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds, steps = np.arange(5) * 977, np.arange(5)
    if lib == "torch":
        seeds, steps = torch.from_numpy(seeds), torch.from_numpy(steps)
    whole = np.asarray(uniforms(seeds, steps, 101))
    monkeypatch.setattr(_counter, "_CHUNK", 7)  # both row and column slicing
    assert np.array_equal(np.asarray(uniforms(seeds, steps, 101)), whole)
    assert np.array_equal(np.asarray(uniforms(seeds, steps, 3)), whole[:, :3])


def test_seeds_and_steps_give_different_streams() -> None:
    base = uniforms(np.array([5]), np.array([0]), 64)
    assert not np.array_equal(base, uniforms(np.array([6]), np.array([0]), 64))
    assert not np.array_equal(base, uniforms(np.array([5]), np.array([1]), 64))
    assert not np.array_equal(base, uniforms(np.array([5 + 2**32]), np.array([0]), 64))
    assert not np.array_equal(base, uniforms(np.array([5]), np.array([2**32]), 64))


@needs_torch
def test_torch_on_meta_device_makes_no_host_copy() -> None:
    """Meta tensors hold no data, so any ``.item()`` or ``.cpu()`` would fail."""
    seeds = torch.zeros(4, dtype=torch.int64, device="meta")
    u = uniforms(seeds, seeds, 5)
    assert u.device.type == "meta"
    assert tuple(u.shape) == (4, 5)
    assert u.dtype == torch.float64


@pytest.mark.parametrize(
    ("seeds", "step", "n", "match"),
    [
        (np.zeros((2, 2), dtype=np.int64), np.zeros(2, dtype=np.int64), 1, "seeds"),
        (np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int64), 1, "step"),
        (np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64), -1, "n must"),
    ],
)
def test_bad_arguments(seeds: np.ndarray, step: np.ndarray, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        uniforms(seeds, step, n)


# -- uniformity -------------------------------------------------------------
# Fixed seeds make these deterministic; the thresholds only reject gross
# defects (a p-value below 1e-4 for a sound generator is a 1-in-10**4 draw).


def test_chi_square_100_bins() -> None:
    u = uniforms(np.arange(100) + 12345, np.zeros(100, dtype=np.int64), 1000).ravel()
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    assert stats.chisquare(counts).pvalue > 1e-4
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_chi_square_one_draw_per_row_over_seeds_and_steps() -> None:
    """The sampler's usual case: n = 1, many (seed, step) counters."""
    seeds = np.repeat(np.arange(1000), 100)
    steps = np.tile(np.arange(100), 1000)
    u = uniforms(seeds, steps, 1).ravel()
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    assert stats.chisquare(counts).pvalue > 1e-4


def _pair_chi_square(x: np.ndarray, y: np.ndarray) -> float:
    cells = (x * 10).astype(np.int64) * 10 + (y * 10).astype(np.int64)
    return float(stats.chisquare(np.bincount(cells, minlength=100)).pvalue)


@pytest.mark.parametrize(
    ("other_seed", "other_step"),
    [(0, 1), (1, 0), (2**32, 0), (0, 2**32)],
    ids=["next-step", "next-seed", "seed-high-word", "step-high-word"],
)
def test_neighbouring_streams_are_independent(other_seed: int, other_step: int) -> None:
    seeds = np.arange(100, dtype=np.int64) * 7919
    steps = np.arange(100, dtype=np.int64) * 31
    x = uniforms(seeds, steps, 1000).ravel()
    y = uniforms(seeds + other_seed, steps + other_step, 1000).ravel()
    assert _pair_chi_square(x, y) > 1e-4
    assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(x.size)
    assert stats.ks_2samp(x, y).pvalue > 1e-4


def test_consecutive_draws_in_a_row_are_independent() -> None:
    u = uniforms(np.arange(50), np.zeros(50, dtype=np.int64), 4001)
    for lag in (1, 2):  # lag 1 crosses both halves of a Philox block
        x, y = u[:, :-lag].ravel(), u[:, lag:].ravel()
        assert _pair_chi_square(x, y) > 1e-4
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(x.size)


# -- draw_torch ---------------------------------------------------------------


def _weights(rng: np.random.Generator, rows: int, length: int, dtype: type) -> np.ndarray:
    w = rng.random((rows, length)) ** rng.choice([1.0, 8.0, 40.0])
    w[rng.random((rows, length)) < rng.random()] = 0.0  # removed tokens
    if rng.random() < 0.5:
        w = np.round(w * 4) / 4  # ties
    w[np.arange(rows), rng.integers(0, length, rows)] = 1.0
    return (w / w.max(axis=1, keepdims=True)).astype(dtype)


def _check_draw_torch(device: str, dtype: type, trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        rows, length = int(rng.integers(1, 9)), int(rng.integers(1, 3001))
        w = _weights(rng, rows, length, dtype)
        u = rng.random((rows, int(rng.integers(1, 40))))
        u[0, 0], u[-1, -1] = 0.0, 1.0 - 2.0**-53  # both ends of [0, 1)
        bits = fixed_point_bits(rows * int(rng.integers(1, 10**6)), length)
        want = draw(w, u, bits)
        got = draw_torch(torch.from_numpy(w).to(device), torch.from_numpy(u).to(device), bits)
        assert got.dtype == torch.int64
        assert got.device.type == device
        np.testing.assert_array_equal(got.cpu().numpy(), want)
        ints = (w * w.dtype.type(2.0**bits)).astype(np.int64)
        assert (np.take_along_axis(ints, want, axis=1) > 0).all()


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_draw_torch_equals_draw(dtype: type) -> None:
    _check_draw_torch("cpu", dtype, trials=60, seed=1 if dtype is np.float32 else 2)


@needs_torch
def test_draw_torch_extremes() -> None:
    # one kept token; weights below the resolution; all-equal weights
    w = np.zeros((3, 50))
    w[0, 17] = 1.0
    w[1, :] = 1e-13
    w[1, 3] = 1.0
    w[2, :] = 1.0
    u = np.array([[0.0, 0.5, 1 - 2**-53]] * 3)
    want = draw(w, u, 40)
    assert want[0].tolist() == [17, 17, 17]
    assert want[1].tolist() == [3, 3, 3]
    assert want[2].tolist() == [0, 25, 49]
    got = draw_torch(torch.from_numpy(w), torch.from_numpy(u), 40)
    np.testing.assert_array_equal(got.numpy(), want)
    # u = 1 lies outside [0, 1); both clamp the target to the last kept token
    w[0, 40] = 0.5
    one = np.ones((3, 1))
    assert draw(w, one, 40)[:, 0].tolist() == [40, 3, 49]
    assert draw_torch(torch.from_numpy(w), torch.from_numpy(one), 40)[:, 0].tolist() == [40, 3, 49]


@needs_torch
def test_draw_torch_half_precision_weights() -> None:
    w = np.array([[0.25, 0.0, 1.0, 0.5]], dtype=np.float16)
    u = np.linspace(0, 1, 11, endpoint=False)[None]
    got = draw_torch(torch.from_numpy(w), torch.from_numpy(u), 40)
    np.testing.assert_array_equal(got.numpy(), draw(w.astype(np.float32), u, 40))


@needs_torch
def test_counter_uniforms_drive_the_same_tokens_on_both_backends() -> None:
    rng = np.random.default_rng(3)
    w = _weights(rng, 8, 500, np.float32)
    seeds, steps = rng.integers(0, 2**63, 8), np.full(8, 17)
    want = draw(w, uniforms(seeds, steps, 4), 40)
    u = uniforms(torch.from_numpy(seeds), torch.from_numpy(steps), 4)
    np.testing.assert_array_equal(draw_torch(torch.from_numpy(w), u, 40).numpy(), want)
    # each row alone draws the same tokens as inside the batch
    for r in range(8):
        alone = draw(w[r : r + 1], uniforms(seeds[r : r + 1], steps[r : r + 1], 4), 40)
        np.testing.assert_array_equal(alone[0], want[r])


# -- CUDA -----------------------------------------------------------------------


@needs_torch
@cuda
def test_cuda_uniforms_equal_numpy() -> None:
    rng = np.random.default_rng(11)
    seeds = np.concatenate([rng.integers(0, 2**63, 60), [0, _TOP, -1, 2**32]])
    steps = np.concatenate([rng.integers(0, 2**40, 60), [0, _TOP, 1, 2**32]])
    for n in (1, 2, 5, 1000):
        got = uniforms(torch.from_numpy(seeds).cuda(), torch.from_numpy(steps).cuda(), n)
        assert got.device.type == "cuda"
        want = uniforms(seeds, steps, n)
        assert np.array_equal(got.cpu().numpy().view(np.int64), want.view(np.int64))


@needs_torch
@cuda
def test_cuda_draw_torch_equals_draw() -> None:
    _check_draw_torch("cuda", np.float32, trials=20, seed=5)
    _check_draw_torch("cuda", np.float64, trials=20, seed=6)
