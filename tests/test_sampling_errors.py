"""Bad input: the exact exception type, and a message that names the argument.

Logits, seeds and steps are checked the same way as numpy arrays and as torch
tensors (on their device).
"""

from __future__ import annotations

import numpy as np
import pytest

from backends import needs_torch, torch
from thermoscope.sampling import (
    EntropyTemperature,
    Epsilon,
    MinP,
    Sampler,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
)

GOOD = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
LIBS = ["numpy", pytest.param("torch", marks=needs_torch)]


def as_lib(x, lib):
    return torch.tensor(np.asarray(x)) if lib == "torch" else x


def sampler() -> Sampler:
    return Sampler([Temperature(0.7), TopK(2), TopP(0.9)])


@pytest.mark.parametrize(
    ("logits", "fragment"),
    [
        (np.array([1.0, np.nan, 0.0]), "NaN"),
        (np.array([1.0, np.inf, 0.0]), r"\+inf"),
        (np.array([[1.0, 0.0], [-np.inf, -np.inf]]), "all -inf"),
    ],
)
@pytest.mark.parametrize("method", ["logits", "probs", "sample", "sample_with_logprobs"])
@pytest.mark.parametrize("lib", LIBS)
def test_bad_logit_values(logits, fragment, method, lib):
    with pytest.raises(ValueError, match=rf"`logits`.*{fragment}"):
        getattr(sampler(), method)(as_lib(logits, lib))


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("warper", [TopK(1), Temperature(1.0), Typical(0.5)])
def test_warpers_validate_logits_too(warper, lib):
    with pytest.raises(ValueError, match=r"`logits`.*NaN"):
        warper(as_lib(np.array([np.nan, 1.0]), lib))


@pytest.mark.parametrize("empty", [np.zeros((0,)), np.zeros((3, 0)), np.zeros((0, 5)), []])
def test_empty_input(empty):
    with pytest.raises(ValueError, match="`logits` must not be empty"):
        sampler().probs(empty)


def test_scalar_input():
    with pytest.raises(ValueError, match="`logits` must have at least 1 dimension"):
        sampler().probs(3.0)


@pytest.mark.parametrize("bad", [["a", "b"], np.array([1 + 2j, 3]), [object(), object()]])
def test_non_numeric_input(bad):
    with pytest.raises(TypeError, match="`logits`"):
        sampler().sample(bad)


def test_non_numeric_torch_input():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="`logits`"):
        sampler().probs(torch.tensor([True, False]))


@pytest.mark.parametrize("t", [-0.1, np.nan, [0.5, -1.0]])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="`temperature`"):
        Temperature(t)


def test_non_numeric_temperature():
    with pytest.raises(TypeError, match="`temperature`"):
        Temperature("hot")


@pytest.mark.parametrize("k", [0, -3, [2, 0]])
def test_k_below_one(k):
    with pytest.raises(ValueError, match="`top_k` must be an integer >= 1"):
        TopK(k)


@pytest.mark.parametrize("k", [2.5, "3", True, None])
def test_k_not_an_integer(k):
    with pytest.raises(TypeError, match="`top_k` must be an integer"):
        TopK(k)


@pytest.mark.parametrize(
    ("cls", "name"), [(TopP, "top_p"), (Typical, "typical_p"), (Epsilon, "epsilon")]
)
@pytest.mark.parametrize("p", [0.0, -0.2, 1.5, np.nan, [0.5, 2.0]])
def test_fraction_outside_open_closed_unit_interval(cls, name, p):
    with pytest.raises(ValueError, match=rf"`{name}` must be in \(0, 1\]"):
        cls(p)


def test_top_p_message_wording():
    with pytest.raises(ValueError, match="top_p") as info:
        TopP(1.5)
    assert str(info.value) == "`top_p` must be in (0, 1], got 1.5."


@pytest.mark.parametrize("p", [-0.01, 1.01, np.nan])
def test_min_p_outside_closed_unit_interval(p):
    with pytest.raises(ValueError, match=r"`min_p` must be in \[0, 1\]"):
        MinP(p)


def test_non_numeric_fraction():
    with pytest.raises(TypeError, match="`top_p`"):
        TopP("high")


@pytest.mark.parametrize("mtk", [0, -1])
def test_min_tokens_to_keep(mtk):
    with pytest.raises(ValueError, match="`min_tokens_to_keep`"):
        TopP(0.5, min_tokens_to_keep=mtk)


def test_min_tokens_to_keep_must_be_scalar():
    with pytest.raises(TypeError, match="`min_tokens_to_keep`"):
        TopK(3, min_tokens_to_keep=[1, 2])


def test_top_n_sigma_negative():
    with pytest.raises(ValueError, match="`top_n_sigma`"):
        TopNSigma(-1.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_t": -1.0, "max_t": 1.0}, "min_t"),
        ({"min_t": 1.0, "max_t": 0.5}, "max_t"),
        ({"min_t": 0.5, "max_t": 1.0, "exponent": -1.0}, "exponent"),
        ({"min_t": 0.5, "max_t": 1.0, "exponent": np.inf}, "exponent"),
        ({"min_t": [0.1, 0.2], "max_t": [1.0, 1.0, 1.0]}, "max_t"),
    ],
)
def test_entropy_temperature_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        EntropyTemperature(**kwargs)


@pytest.mark.parametrize(
    ("warper", "name"),
    [
        (Temperature([1.0, 2.0, 3.0]), "temperature"),
        (TopK([1, 2, 3]), "top_k"),
        (TopP([0.5, 0.9, 0.9]), "top_p"),
        (MinP([0.1]), "min_p"),
        (Typical([0.5, 0.5, 0.5]), "typical_p"),
        (Epsilon([0.1, 0.1, 0.1]), "epsilon"),
        (TopNSigma([1.0, 1.0, 1.0]), "top_n_sigma"),
        (EntropyTemperature([0.1, 0.1, 0.1], 1.0), "min_t"),
    ],
)
def test_per_row_shape_mismatch(warper, name):
    # GOOD has 2 rows; every parameter above has 1 or 3 values.
    with pytest.raises(ValueError, match=rf"`{name}` must be a scalar or have one value per row"):
        warper(GOOD)
    for method in ("logits", "probs", "sample"):
        with pytest.raises(ValueError, match=f"`{name}`"):
            getattr(Sampler([warper]), method)(GOOD)


def test_per_row_parameter_on_1d_logits():
    with pytest.raises(ValueError, match="`top_p`"):
        TopP([0.5, 0.9])(np.array([1.0, 2.0]))


@pytest.mark.parametrize("n", [0, -2])
def test_n_below_one(n):
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        sampler().sample(GOOD, n=n)


@pytest.mark.parametrize("n", [1.5, "2", [1, 2]])
def test_n_not_an_integer(n):
    with pytest.raises(TypeError, match="`n`"):
        sampler().sample(GOOD, n=n)


def test_seed_and_rng_together():
    with pytest.raises(ValueError, match="`seed` and `rng`"):
        sampler().sample(GOOD, seed=1, rng=np.random.default_rng(1))


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match=r"`rng` must be a numpy\.random\.Generator"):
        sampler().sample(GOOD, rng=np.random.RandomState(0))


def test_seed_must_be_an_integer():
    with pytest.raises(TypeError, match="`seed`"):
        sampler().sample(GOOD, seed=1.5)


def test_bad_order():
    with pytest.raises(ValueError, match="`order` must be"):
        Sampler([TopK(2)], order="vllm")
    with pytest.raises(ValueError, match="`order` must mention every warper"):
        Sampler([TopK(2), Temperature(0.5)], order=["top_k"])
    with pytest.raises(TypeError, match="`order` entries"):
        Sampler([TopK(2)], order=[3])


def test_warpers_must_be_warpers():
    with pytest.raises(TypeError, match="`warpers`"):
        Sampler([lambda z: z])


def test_rng_may_be_an_integer_seed_as_everywhere_in_the_library():
    a = sampler().sample(GOOD, n=20, rng=7)
    assert np.array_equal(a, sampler().sample(GOOD, n=20, rng=np.random.default_rng(7)))


@needs_torch
def test_rng_draws_the_generator_stream_for_torch_input_too():
    # Made on the host, moved to the device once.
    a = sampler().sample(GOOD, n=20, rng=7)
    b = sampler().sample(torch.tensor(GOOD), n=20, rng=7)
    assert np.array_equal(a, b.numpy())


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [({"seed": -1}, ValueError, "`seed`"), ({"rng": -1}, ValueError, "`rng`")],
)
def test_negative_seeds_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name) as info:
        sampler().sample(GOOD, **kwargs)
    assert type(info.value) is exc


# -- seeds and steps ---------------------------------------------------------------


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["seed", "step"])
@pytest.mark.parametrize(
    ("value", "exc", "fragment"),
    [
        (-1, ValueError, "must be an integer >= 0"),
        ([3, -2], ValueError, "must be an integer >= 0"),
        ([1, 2, 3], ValueError, "must be a scalar or have one value per row"),
        ([[1, 2]], ValueError, "must be a scalar or have one value per row"),
        (1.5, TypeError, "must be an integer"),
        ([0.5, 1.0], TypeError, "must be an integer"),
        ("3", TypeError, "must be an integer"),
    ],
)
def test_bad_seeds_and_steps_name_the_argument(lib, name, value, exc, fragment):
    x = as_lib(GOOD, lib)
    kwargs = {"seed": 1, name: value}
    with pytest.raises(exc, match=rf"`{name}` {fragment}") as info:
        sampler().sample(x, **kwargs)
    assert type(info.value) is exc


@pytest.mark.parametrize("name", ["seed", "step"])
@pytest.mark.parametrize(
    ("value", "exc"),
    [
        ([1, -1], ValueError),
        ([1, 2, 3], ValueError),
        ([0.5, 1.0], TypeError),
        ([True, False], TypeError),
    ],
)
@needs_torch
def test_bad_seed_and_step_tensors(name, value, exc):
    kwargs = {"seed": 1, name: torch.tensor(value)}
    with pytest.raises(exc, match=f"`{name}`") as info:
        sampler().sample(torch.tensor(GOOD), **kwargs)
    assert type(info.value) is exc


@needs_torch
def test_seed_tensor_with_numpy_logits():
    with pytest.raises(TypeError, match="`seed` must be an integer or a numpy array"):
        sampler().sample(GOOD, seed=torch.tensor([1, 2]))


def test_seed_range():
    sampler().sample(GOOD, seed=2**64 - 1)  # the largest 64-bit seed
    sampler().sample(GOOD, seed=np.array([2**64 - 1, 0], dtype=np.uint64))
    with pytest.raises(ValueError, match="`seed` must be an integer below 2\\*\\*64"):
        sampler().sample(GOOD, seed=2**64)


def test_step_needs_a_seed():
    with pytest.raises(ValueError, match="`step` numbers seeded draws"):
        sampler().sample(GOOD, step=3)
    with pytest.raises(ValueError, match="`step`"):
        sampler().sample(GOOD, rng=1, step=np.array([1, 2]))


def test_logprobs_mode_and_top():
    with pytest.raises(ValueError, match="`mode` must be one of raw_logprobs"):
        sampler().sample_with_logprobs(GOOD, mode="logprobs")
    with pytest.raises(ValueError, match="`top` must be an integer >= 0"):
        sampler().sample_with_logprobs(GOOD, top=-1)
    with pytest.raises(TypeError, match="`top`"):
        sampler().sample_with_logprobs(GOOD, top=1.5)
