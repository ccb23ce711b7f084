"""Bad input raises a ValueError/TypeError that names the argument in backticks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thermoscope.core import (
    effective_temperature,
    entropy,
    free_energy,
    log_softmax,
    max_probability,
    perplexity,
    reweight,
    softmax,
    temperature_for_entropy,
)

pytestmark = pytest.mark.filterwarnings("error")

SOFTMAXES = [softmax, log_softmax]
PROB_FUNCS = [entropy, perplexity, max_probability, lambda p: reweight(p, 0.5)]
PROB_IDS = ["entropy", "perplexity", "max_probability", "reweight"]


# ------------------------------------------------------------------------- logits
@pytest.mark.parametrize("fn", SOFTMAXES)
@pytest.mark.parametrize(
    "logits",
    [
        [1.0, np.nan, 0.0],
        [1.0, np.inf, 0.0],
        [[1.0, 2.0], [np.nan, 0.0]],
        [-np.inf, -np.inf],
        [[1.0, 2.0], [-np.inf, -np.inf]],
    ],
    ids=["nan", "posinf", "nan-2d", "all-masked", "all-masked-row"],
)
def test_bad_logits(fn, logits):
    with pytest.raises(ValueError, match="`logits`"):
        fn(logits, 1.0)


@pytest.mark.parametrize("fn", SOFTMAXES)
@pytest.mark.parametrize(
    "logits", [[], np.zeros((3, 0)), np.zeros((0, 4))], ids=["[]", "(3,0)", "(0,4)"]
)
def test_empty_logits(fn, logits):
    with pytest.raises(ValueError, match="`logits`"):
        fn(logits)


@pytest.mark.parametrize("fn", SOFTMAXES)
def test_scalar_logits(fn):
    with pytest.raises(ValueError, match="`logits`"):
        fn(3.0)


@pytest.mark.parametrize("fn", SOFTMAXES)
@pytest.mark.parametrize(
    "logits",
    [["a", "b"], "abc", [object(), 1.0], [1 + 2j, 0j]],
    ids=["strs", "str", "obj", "complex"],
)
def test_non_numeric_logits(fn, logits):
    with pytest.raises(TypeError, match="`logits`"):
        fn(logits)


def test_bad_torch_logits():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="`logits`"):
        softmax(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="`logits`"):
        log_softmax(torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]]))


def test_all_masked_row_along_axis0():
    z = np.array([[-np.inf, 1.0], [-np.inf, 2.0]])  # column 0 is all -inf
    with pytest.raises(ValueError, match="`logits`"):
        softmax(z, axis=0)
    softmax(z, axis=-1)  # rows along the last axis are fine


# ------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("fn", SOFTMAXES)
@pytest.mark.parametrize("t", [-1.0, -1e-300, -np.inf, np.nan, [0.5, -0.1]], ids=str)
def test_bad_temperature(fn, t):
    z = [[1.0, 2.0], [0.0, 0.5]]
    with pytest.raises(ValueError, match="`temperature`"):
        fn(z, t)


def test_temperature_message_names_value():
    with pytest.raises(ValueError, match=r"`temperature`.*-1") as info:
        softmax([1.0, 2.0], -1.0)
    assert ">= 0" in str(info.value) or "non-negative" in str(info.value)


@pytest.mark.parametrize("fn", SOFTMAXES)
def test_non_numeric_temperature(fn):
    with pytest.raises(TypeError, match="`temperature`"):
        fn([1.0, 2.0], "hot")


@pytest.mark.parametrize("fn", SOFTMAXES)
@pytest.mark.parametrize(
    "t",
    [np.ones(4), np.ones(2), np.ones((3, 5)), np.ones((5, 3))],
    ids=["B+1", "B-1", "2d", "2d-T"],
)
def test_per_row_temperature_wrong_shape(fn, t):
    z = np.zeros((3, 5))
    with pytest.raises(ValueError, match="`temperature`"):
        fn(z, t)


def test_per_row_temperature_on_1d_logits():
    with pytest.raises(ValueError, match="`temperature`"):
        softmax([1.0, 2.0, 3.0], [0.5, 1.0, 2.0])


def test_empty_temperature():
    with pytest.raises(ValueError, match="`temperature`"):
        softmax([1.0, 2.0], [])


def test_reweight_bad_temperature():
    with pytest.raises(ValueError, match="`temperature`"):
        reweight([0.5, 0.5], -2.0)
    with pytest.raises(ValueError, match="`temperature`"):
        reweight([0.5, 0.5], np.nan)


# ------------------------------------------------------------------------- axis
def test_axis_out_of_range():
    with pytest.raises((ValueError, IndexError)):
        softmax([1.0, 2.0], axis=1)
    with pytest.raises((ValueError, IndexError)):
        entropy([[0.5, 0.5]], axis=-3)


# ------------------------------------------------------------------------- probabilities
@pytest.mark.parametrize("fn", PROB_FUNCS, ids=PROB_IDS)
@pytest.mark.parametrize(
    "p",
    [
        [0.5, 0.6],
        [1.2, -0.2],
        [-0.1, 1.1],
        [0.5, np.nan],
        [0.3, 0.3],
        [[0.5, 0.5], [0.2, 0.7]],
        [np.inf, 0.0],
    ],
    ids=["sum>1", "above1", "negative", "nan", "sum<1", "bad-row", "inf"],
)
def test_bad_probabilities(fn, p):
    with pytest.raises(ValueError, match="`probs`"):
        fn(p)


@pytest.mark.parametrize("fn", PROB_FUNCS, ids=PROB_IDS)
def test_empty_probabilities(fn):
    with pytest.raises(ValueError, match="`probs`"):
        fn([])


@pytest.mark.parametrize("fn", PROB_FUNCS, ids=PROB_IDS)
def test_non_numeric_probabilities(fn):
    with pytest.raises(TypeError, match="`probs`"):
        fn(["0.5", "0.5"])


def test_probability_tolerance_accepts_float32_softmax_outputs():
    # a float32 softmax of a long row does not sum to exactly 1: must still be accepted
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=50_000).astype(np.float32))
    assert np.isfinite(float(entropy(p)))
    reweight(p, 0.5)


@pytest.mark.parametrize("base", [0, -2, 1, np.nan, np.inf])
def test_entropy_bad_base(base):
    with pytest.raises(ValueError, match="`base`"):
        entropy([0.5, 0.5], base=base)


# ------------------------------------------------------------------------- temperature_for_entropy
@pytest.mark.parametrize("target", [-1.0, math.log(3) + 1e-3, np.nan, np.inf], ids=str)
def test_temperature_for_entropy_bad_target(target):
    with pytest.raises(ValueError, match="`target`"):
        temperature_for_entropy([1.0, 2.0, 3.0], target)


def test_temperature_for_entropy_bad_target_message_shows_range():
    with pytest.raises(ValueError, match="`target`") as info:
        temperature_for_entropy([1.0, 2.0, 3.0], 2.0)
    assert "2.0" in str(info.value)
    assert "1.09861" in str(info.value)  # ln 3, the largest reachable entropy


def test_temperature_for_entropy_non_numeric_target():
    with pytest.raises(TypeError, match="`target`"):
        temperature_for_entropy([1.0, 2.0], "high")


def test_temperature_for_entropy_wrong_target_shape():
    with pytest.raises(ValueError, match="`target`"):
        temperature_for_entropy(np.zeros((3, 4)) + np.arange(4), np.full(2, 0.5))


def test_temperature_for_entropy_bad_logits():
    with pytest.raises(ValueError, match="`logits`"):
        temperature_for_entropy([1.0, np.nan], 0.1)
    with pytest.raises(ValueError, match="`logits`"):
        temperature_for_entropy([], 0.1)
    with pytest.raises(TypeError, match="`logits`"):
        temperature_for_entropy(["a", "b"], 0.1)


# ------------------------------------------------------------------------- free_energy
def test_free_energy_bad_q():
    z = [2.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="`q`"):
        free_energy([0.5, 0.6, 0.0], z, 1.0)
    with pytest.raises(ValueError, match="`q`"):
        free_energy([1.5, -0.5, 0.0], z, 1.0)
    with pytest.raises(TypeError, match="`q`"):
        free_energy(["a", "b", "c"], z, 1.0)


def test_free_energy_bad_logits_and_temperature():
    q = [0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="`logits`"):
        free_energy(q, [1.0, np.nan, 0.0], 1.0)
    with pytest.raises(ValueError, match="`temperature`"):
        free_energy(q, [1.0, 2.0, 0.0], -0.5)
    with pytest.raises(ValueError, match=r"`(q|logits)`"):
        free_energy(q, [1.0, 2.0], 1.0)


# ------------------------------------------------------------------------- effective_temperature
@pytest.mark.parametrize("scale", [0.0, -1.0, -0.5, np.nan, np.inf])
def test_effective_temperature_bad_scale(scale):
    with pytest.raises(ValueError, match="`scale`"):
        effective_temperature(scale)


def test_effective_temperature_bad_types_and_temperature():
    with pytest.raises(TypeError, match="`scale`"):
        effective_temperature("big")
    with pytest.raises(ValueError, match="`temperature`"):
        effective_temperature(2.0, -1.0)
    with pytest.raises(ValueError, match="`temperature`"):
        effective_temperature(2.0, np.nan)


def test_temperature_for_entropy_bits_error_shows_the_callers_value():
    # ln 3 = 1.585 bits is the most these logits can reach; the message must show
    # the value the caller passed (1.7 bits), not its conversion to nats (1.178).
    with pytest.raises(ValueError, match="`target`") as info:
        temperature_for_entropy([1.0, 2.0, 3.0], 1.7, base=2)
    assert "1.7" in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: softmax([1.0, 2.0], 1.0, -1),
        lambda: log_softmax([1.0, 2.0], 1.0, -1),
        lambda: reweight([0.5, 0.5], 1.0, -1),
        lambda: entropy([0.5, 0.5], -1),
        lambda: perplexity([0.5, 0.5], -1),
        lambda: max_probability([0.5, 0.5], -1),
        lambda: free_energy([0.5, 0.5], [1.0, 2.0], 1.0, -1),
        lambda: temperature_for_entropy([1.0, 2.0], 0.5, 2),
    ],
)
def test_options_after_the_temperature_are_keyword_only(call):
    with pytest.raises(TypeError):
        call()
