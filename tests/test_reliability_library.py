"""Regression tests for issue 16 (library side): each test is named after the defect it pins."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import needs_torch, torch
from thermoscope._validation import check_integer, check_seed, check_seed_bits
from thermoscope.sampling import Sampler, TopK, TopP, summarize_sampling
from thermoscope.sampling._draw import draw
from thermoscope.sampling._rowdraw import bits_for

Z = np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7])


# ------------------------------------------------------------------ item 1: huge top_k


@pytest.mark.parametrize("k", [2**63, 2**64 - 1, np.uint64(2**64 - 1), 1e20, 2**200, [2**63, 3]])
def test_top_k_beyond_int64_keeps_everything_instead_of_wrapping(k: Any) -> None:
    rows = np.stack([Z, Z]) if isinstance(k, list) else Z
    probs = Sampler([TopK(k)]).probs(rows)
    expected = np.exp(Z - Z.max()) / np.exp(Z - Z.max()).sum()
    first = probs[0] if isinstance(k, list) else probs
    np.testing.assert_allclose(first, expected, rtol=1e-12)
    draws = Sampler([TopK(k)]).sample(rows, n=200, seed=0)
    assert len(np.unique(draws)) > 1  # not only the top token


def test_top_k_beyond_int64_from_options_and_summary() -> None:
    assert (Sampler.from_options(top_k=2**63).probs(Z) > 0).all()
    assert summarize_sampling(Z, top_k=2**63).kept_count == Z.size
    assert summarize_sampling(Z, top_k=1e20).kept_count == Z.size


@needs_torch
def test_top_k_beyond_int64_torch_keeps_everything() -> None:
    probs = Sampler([TopK(2**63)]).probs(torch.tensor(Z))
    assert bool((probs > 0).all())


@pytest.mark.parametrize("k", [-(2**63) - 1, -1, 0, -1e20])
def test_check_integer_quotes_the_value_given(k: Any) -> None:
    with pytest.raises(ValueError, match=r"^`top_k` must be an integer >= 1, got ") as err:
        TopK(k)
    assert str(err.value).endswith(f"got {int(k)}.")


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_check_integer_never_wraps(k: int) -> None:
    if k < 0:
        with pytest.raises(ValueError, match=str(k)):
            check_integer(k, "k", minimum=0)
        return
    assert int(check_integer(k, "k", minimum=0)) == min(k, 2**63 - 1)


@pytest.mark.parametrize("k", [2**63, np.uint64(2**63), 2.0**63])
def test_check_integer_maximum_is_exact(k: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^`n` must be an integer <= 100, got 9223372036854775808"
    ):
        check_integer(k, "n", maximum=100)


# ------------------------------------------------------------------ item 9: seeds and counts


def test_seed_bits_keep_uint64_patterns_and_refuse_wider_values() -> None:
    assert check_seed_bits([1, 2**64 - 1]).tolist() == [1, -1]
    assert check_seed_bits(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [-1]
    with pytest.raises(
        ValueError, match=r"^`seed` must be an integer below 2\*\*64, got 18446744073709551616\.$"
    ):
        check_seed_bits(2**64)
    with pytest.raises(ValueError, match=r"^`seed` must be an integer >= 0, got -1\.$"):
        check_seed_bits(-1)
    # The largest seed draws like its bit pattern always has.
    a = Sampler([TopK(3)]).sample(Z, n=50, seed=2**64 - 1)
    b = Sampler([TopK(3)]).sample(Z, n=50, seed=np.array(2**64 - 1, dtype=np.uint64))
    np.testing.assert_array_equal(a, b)


def test_check_seed_takes_any_non_negative_integer_exactly() -> None:
    assert check_seed(2**64) == 2**64
    assert check_seed(np.uint64(2**64 - 1)) == 2**64 - 1
    with pytest.raises(ValueError, match=r"^`--seed` must be an integer >= 0, got -1\.$"):
        check_seed(-1, "--seed")


@pytest.mark.parametrize("n", [2**63, 2**64, 2**41])
def test_sample_count_beyond_the_cap_names_n(n: int) -> None:
    with pytest.raises(ValueError, match=rf"^`n` must be an integer <= 1099511627776, got {n}\.$"):
        Sampler([TopK(2)]).sample(Z, n=n, seed=0)


# ------------------------------------------------------------------ item 15: one leniency rule


@pytest.mark.parametrize("bad", ["0.5", "3", True, b"1", np.bool_(True), ["0.5"]])
@pytest.mark.parametrize(
    ("make", "name"),
    [
        (TopK, "top_k"),
        (TopP, "top_p"),
        (lambda v: summarize_sampling(Z, top_p=v), "top_p"),
        (lambda v: summarize_sampling(Z, top_k=v), "top_k"),
        (lambda v: summarize_sampling(Z, temperature=v), "temperature"),
        (lambda v: Sampler.from_options(min_p=v), "min_p"),
    ],
)
def test_strings_and_bools_are_never_numbers(make: Any, name: str, bad: Any) -> None:
    with pytest.raises(TypeError, match=rf"^`{name}` must be "):
        make(bad)


# ------------------------------------------------------------------ item 3: draw memory

_BLOCK = 512


def _old_draw(weights: np.ndarray, u: np.ndarray, bits: int) -> np.ndarray:
    """The draw as of issue 16 (two levels for every n): the reference for equality.

    A flat transcription: exact integer weights, one running sum per row,
    the target ``floor(u * total)`` capped at ``total - 1``, and the count of
    running sums at or below it, gathered through 512-token blocks.
    """
    rows, length = weights.shape
    scale = weights.dtype.type(2.0**bits)
    ints = (weights * scale).astype(np.int64)
    block = min(_BLOCK, length, 2 ** max(0, 53 - bits))
    blocks = -(-length // block)
    padded = np.zeros((rows, blocks * block), dtype=np.int64)
    padded[:, :length] = ints
    block_sums = padded.reshape(rows, blocks, block).sum(-1)
    running = np.cumsum(block_sums, axis=-1)
    totals = running[:, -1]
    out = np.empty(u.shape, dtype=np.int64)
    for r in range(rows):
        offset = np.floor(u[r] * float(totals[r])).astype(np.int64)
        target = np.minimum(offset, totals[r] - 1)
        blk = np.searchsorted(running[r], target, side="right")
        before = np.where(blk > 0, running[r][np.maximum(blk - 1, 0)], 0)
        inside = np.cumsum(padded[r].reshape(blocks, block)[blk], axis=-1)
        out[r] = blk * block + np.count_nonzero(inside <= (target - before)[:, None], axis=-1)
    return out


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 4),
    length=st.integers(1, 1500),
    n=st.integers(1, 40),
    zeros=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**32 - 1),
    single=st.booleans(),
)
def test_many_draws_give_the_same_tokens_as_before(
    rows: int, length: int, n: int, zeros: float, seed: int, single: bool
) -> None:
    rng = np.random.default_rng(seed)
    w = np.exp(rng.normal(size=(rows, length)) * 3)
    w[rng.random((rows, length)) < zeros] = 0.0
    w[np.arange(rows), rng.integers(0, length, rows)] = 1.0
    w /= w.max(axis=1, keepdims=True)
    w = w.astype(np.float32 if single else np.float64)
    u = rng.random((rows, n))
    u[:, 0] = 0.0
    u[:, -1] = 1.0 - 2.0**-53  # both ends of [0, 1)
    bits = bits_for(length)
    got = draw(w, u, bits)
    np.testing.assert_array_equal(got, _old_draw(w, u, bits))
    assert (np.take_along_axis(w, got, axis=1) > 0).all()


def test_sampler_draws_are_unchanged_on_a_large_vocabulary() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(3, 5000)) * 2
    z[:, ::7] = -np.inf
    s = Sampler([TopP(0.95)])
    from thermoscope.sampling._input import prepare
    from thermoscope.sampling._seeds import randomness

    got = s.sample(z, n=3000, seed=[1, 2, 3])
    u = randomness(prepare(z, check=False), [1, 2, 3], None, 0).uniforms(3000)
    p = s.probs(z)
    w = np.where(p > 0, np.exp(z - z.max(axis=1, keepdims=True)), 0.0)
    # Probabilities -> weights relative to the top kept token, as the chain hands them over.
    w = p / p.max(axis=1, keepdims=True)
    ref = _old_draw(w, u, bits_for(z.shape[1]))
    agree = (got == ref).mean()
    assert agree > 0.999  # weights rebuilt from probs may round one ulp differently
    assert (p[np.arange(3)[:, None], got] > 0).all()


def test_draw_memory_is_linear_in_vocabulary_plus_draws() -> None:
    vocab, n = 4096, 100_000
    rng = np.random.default_rng(0)
    w = np.exp(rng.normal(size=(1, vocab)) * 2)
    w /= w.max()
    u = rng.random((1, n))
    tracemalloc.start()
    try:
        draw(w, u, bits_for(vocab))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The output (8 n bytes) plus bounded temporaries; the old draw peaked at 1.66 GB here.
    assert peak < 8 * n + 4 * 2**20


def test_sampler_sample_memory_is_linear_in_vocabulary_plus_draws() -> None:
    vocab, n = 4096, 100_000
    z = np.random.default_rng(1).normal(size=vocab)
    s = Sampler([TopK(4000), TopP(0.99)])
    s.sample(z, n=10, seed=0)  # warm caches outside the measurement
    tracemalloc.start()
    try:
        s.sample(z, n=n, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 8 * n + 8 * 2**20  # uniforms, targets, tokens; O(V) for the rest


# ------------------------------------------------------------------ item 8: raw library errors


def test_scaler_from_json_deeply_nested_is_a_value_error(tmp_path: Any) -> None:
    from thermoscope.calibration import TemperatureScaler

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(
        ValueError, match=r"deep\.json` must be a thermoscope temperature file, got JSON nested"
    ):
        TemperatureScaler.from_json(path)


def test_scaler_from_json_huge_number_names_the_file(tmp_path: Any) -> None:
    from thermoscope.calibration import TemperatureScaler

    path = tmp_path / "t.json"
    path.write_text(
        '{"format": "thermoscope.TemperatureScaler", "temperature": ' + "9" * 5000 + "}"
    )
    with pytest.raises(
        ValueError,
        match=r"t\.json` must be a thermoscope temperature file, got an unreadable number",
    ):
        TemperatureScaler.from_json(path)


def test_accumulate_npy_missing_file_names_the_argument(tmp_path: Any) -> None:
    from thermoscope.calibration import accumulate_npy

    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^`path_probs` must be an existing \.npy file, got "):
        accumulate_npy(tmp_path / "missing.npy", tmp_path / "y.npy")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(ValueError, match=r"^`path_probs` must be a"):
        accumulate_npy(tmp_path / "bad.npy", tmp_path / "y.npy")


def test_accumulate_npy_refuses_booleans_like_memory(tmp_path: Any) -> None:
    from thermoscope.calibration import accumulate_npy

    np.save(tmp_path / "p.npy", np.array([True, False]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(TypeError, match=r"^`path_probs` must hold a numeric array, got dtype bool"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "y.npy")


# ------------------------------------------------------------------ item 10: names


def test_effective_temperature_list_names_temperature() -> None:
    from thermoscope.core import effective_temperature

    with pytest.raises(
        TypeError, match=r"^`temperature` must be a single number >= 0, got shape \(2,\)\.$"
    ):
        effective_temperature(1.0, [1, 2])
    with pytest.raises(TypeError, match=r"^`scale` must be a positive number, got '2'\.$"):
        effective_temperature("2")


@pytest.mark.parametrize("bad", [None, 3, "top_k"])
def test_sampler_of_a_non_iterable_names_warpers(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"^`warpers` must be an iterable of Warper instances"):
        Sampler(bad)


def test_entropy_string_base_names_base() -> None:
    from thermoscope.core import entropy

    with pytest.raises(TypeError, match=r"^`base` must be a positive number other than 1"):
        entropy([0.5, 0.5], base="e")


# ------------------------------------------------------------------ item 14: no RuntimeWarning


@pytest.mark.filterwarnings("error")
def test_top_n_sigma_infinite_on_a_flat_row_is_silent() -> None:
    from thermoscope.sampling import TopNSigma

    probs = Sampler([TopNSigma(np.inf)]).probs(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(probs[0], [1 / 3] * 3)
    assert (probs[1] > 0).all()


# ------------------------------------------------------------------ item 6: model folders


@needs_torch
def test_load_model_never_reads_pickled_weights(tmp_path: Any) -> None:
    import shutil

    from thermoscope.generation.model import load_model
    from thermoscope.models import embedded_model_path

    folder = tmp_path / "m"
    shutil.copytree(embedded_model_path(), folder)
    (folder / "model.safetensors").unlink()
    # A payload that would create a file if it were ever unpickled.
    marker = tmp_path / "ran"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    (folder / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(
        ValueError, match=r"^`model` must be .*pytorch_model\.bin would need pickle"
    ):
        load_model(folder)
    assert not marker.exists()


@needs_torch
def test_load_model_truncated_weights_is_a_value_error(tmp_path: Any) -> None:
    import shutil

    from thermoscope.generation.model import load_model
    from thermoscope.models import embedded_model_path

    folder = tmp_path / "m"
    shutil.copytree(embedded_model_path(), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"^`model` must be .*its weights cannot be loaded"):
        load_model(folder)


# ------------------------------------------------------------------ item 13, 4: the shared helpers


def test_cli_json_helper_is_strict_and_round_trips() -> None:
    import json

    from thermoscope.cli._json import dumps

    text = dumps({"a": [np.float32(np.inf), -np.inf, np.nan, np.int64(3)], "b": (1.5,)})
    data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert data == {"a": ["inf", "-inf", "nan", 3], "b": [1.5]}
    assert [float(v) for v in data["a"][:2]] == [np.inf, -np.inf]


def test_check_writable_file_cases(tmp_path: Any) -> None:
    from thermoscope._files import check_writable_file

    (tmp_path / "f").write_text("x")
    assert check_writable_file(tmp_path / "ok.json", "--out") == tmp_path / "ok.json"
    for bad, fragment in [
        (tmp_path, "must be a file path, got the folder"),
        (tmp_path / "f" / "x.json", "is a file"),
        (tmp_path / "no" / "x.json", "must be in an existing folder"),
    ]:
        with pytest.raises(
            ValueError, match=rf"^`--out` {fragment}|^`--out` must be a path in a folder"
        ):
            check_writable_file(bad, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probes left nothing


def test_plots_save_atomically(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    from thermoscope.plots import plot_distributions

    plot_distributions([2.0, 1.0, 0.5], temperatures=[0.5, 1.0], save=tmp_path / "d.png")
    plot_distributions([2.0, 1.0, 0.5], temperatures=[0.5, 1.0], save=tmp_path / "noext")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "noext.png"]
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")


# ------------------------------------------------------------------ item 7: size caps


def test_calibration_bins_are_capped_with_a_clear_error() -> None:
    from thermoscope.calibration import expected_calibration_error

    probs, labels = np.array([[0.7, 0.3]]), np.array([0])
    with pytest.raises(
        ValueError, match=r"^`n_bins` must be an integer <= 1000000, got 1000000000000\.$"
    ):
        expected_calibration_error(probs, labels, n_bins=10**12)
    assert np.isfinite(expected_calibration_error(probs, labels, n_bins=1_000_000))
