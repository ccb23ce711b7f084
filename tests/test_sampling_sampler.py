"""`Sampler`: orders, constructors, shapes, per-row parameters and array kinds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import needs_torch, torch
from thermoscope.sampling import (
    LLAMA_CPP_ORDER,
    TRANSFORMERS_ORDER,
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

ROOT = Path(__file__).resolve().parents[1]


def names(sampler: Sampler) -> list[str]:
    return [w.name for w in sampler.warpers]


SCRAMBLED = [
    Epsilon(0.01),
    TopNSigma(2.0),
    MinP(0.1),
    TopP(0.9),
    Typical(0.9),
    TopK(5),
    Temperature(0.5),
]


def test_default_order_is_transformers():
    assert names(Sampler(SCRAMBLED)) == [
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical",
        "epsilon",
        "top_n_sigma",
    ]
    at = TRANSFORMERS_ORDER.index("temperature")
    assert TRANSFORMERS_ORDER[at : at + 2] == ("temperature", "entropy_temperature")
    # Every history stage (biases, penalties) comes before the temperature.
    assert all(TRANSFORMERS_ORDER.index(n) < at for n in ("repetition_penalty", "dry"))


def test_llama_cpp_order_puts_temperature_last():
    got = names(Sampler([*SCRAMBLED, EntropyTemperature(0.5, 1.0)], order="llama.cpp"))
    assert got == [
        "top_n_sigma",
        "top_k",
        "typical",
        "top_p",
        "min_p",
        "epsilon",
        "temperature",
        "entropy_temperature",
    ]
    assert got == [n for n in LLAMA_CPP_ORDER if n in got]


def test_as_given_and_explicit_orders():
    steps = [TopP(0.9), Temperature(0.5), TopK(5)]
    assert names(Sampler(steps, order="as_given")) == ["top_p", "temperature", "top_k"]
    assert names(Sampler(steps, order=[TopK, "top_p", Temperature])) == [
        "top_k",
        "top_p",
        "temperature",
    ]


def test_same_kind_keeps_given_order():
    a, b = TopK(5), TopK(2)
    assert Sampler([b, Temperature(1.0), a]).warpers[1:] == (b, a)


def test_order_changes_the_result():
    # Temperature before top-p flattens the distribution and widens the nucleus.
    z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    hot_first = Sampler([Temperature(3.0), TopP(0.7)])
    hot_last = Sampler([Temperature(3.0), TopP(0.7)], order="llama.cpp")
    assert np.isfinite(hot_first.logits(z)).sum() == 3
    assert np.isfinite(hot_last.logits(z)).sum() == 2


def test_from_options():
    s = Sampler.from_options(
        temperature=0.7,
        top_k=50,
        top_p=0.9,
        min_p=0.05,
        typical_p=0.95,
        epsilon=3e-4,
        top_n_sigma=1.0,
        min_tokens_to_keep=2,
    )
    assert names(s) == [
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical",
        "epsilon",
        "top_n_sigma",
    ]
    assert s.warpers[2].min_tokens_to_keep == 2
    assert names(Sampler.from_options()) == []
    assert names(Sampler.from_options(temperature=None, top_k=0)) == []
    assert names(Sampler.from_options(temperature=[1.0, 0.5])) == ["temperature"]
    assert names(Sampler.from_options(top_k=3, top_p=0.5, order="llama.cpp")) == ["top_k", "top_p"]


def test_from_options_neutral_values_and_none_both_mean_off():
    # transformers' and vLLM's neutral values keep every token, so the step is left out.
    neutral = {
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "typical_p": 1.0,
        "epsilon": 0.0,
    }
    assert names(Sampler.from_options(**neutral)) == []
    assert names(Sampler.from_options(**dict.fromkeys(neutral))) == []
    for option, off in neutral.items():
        others = {name: value for name, value in neutral.items() if name != option}
        assert names(Sampler.from_options(**{option: off}, **others)) == []
    # Per-row arrays always build their step.
    assert names(Sampler.from_options(top_p=[1.0, 0.9])) == ["top_p"]


def test_from_options_top_k_message_says_zero_is_allowed():
    with pytest.raises(ValueError, match=r"`top_k` must be an integer >= 0, got -1") as info:
        Sampler.from_options(top_k=-1)
    assert type(info.value) is ValueError


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: Temperature(temperature=-1.0), "temperature"),
        (lambda: Sampler.from_options(temperature=-1.0), "temperature"),
        (lambda: TopK(top_k=0), "top_k"),
        (lambda: TopP(top_p=1.5), "top_p"),
        (lambda: Sampler.from_options(top_p=1.5), "top_p"),
        (lambda: MinP(min_p=-0.1), "min_p"),
        (lambda: Typical(typical_p=0.0), "typical_p"),
        (lambda: Epsilon(epsilon=2.0), "epsilon"),
        (lambda: TopNSigma(top_n_sigma=-1.0), "top_n_sigma"),
    ],
)
def test_warper_errors_name_the_argument_the_user_typed(build, name):
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        build()
    assert type(info.value) is ValueError


@pytest.mark.parametrize(
    "call",
    [
        lambda: Sampler([TopK(2)], "llama.cpp"),
        lambda: Sampler.from_options(0.7),
        lambda: TopK(2, 1),
        lambda: EntropyTemperature(0.5, 1.5, 2.0),
        lambda: Sampler([TopK(2)]).sample([1.0, 2.0, 3.0], 4),
        lambda: Sampler([TopK(2)]).sample_with_logprobs([1.0, 2.0, 3.0], 4),
    ],
)
def test_options_are_keyword_only(call):
    with pytest.raises(TypeError):
        call()


def test_empty_chain_is_plain_softmax():
    z = np.array([[1.0, 2.0, 3.0]])
    s = Sampler()
    np.testing.assert_allclose(s.probs(z), np.exp(z) / np.exp(z).sum())
    out = s.logits(z)
    np.testing.assert_array_equal(out, z)
    assert out is not z


def test_greedy_and_temperature_zero():
    z = np.array([[0.1, 2.0, 1.0], [5.0, 1.0, 5.0]])
    got = Sampler.greedy().sample(z, n=200, seed=1)
    assert np.all(got[0] == 1)
    assert set(np.unique(got[1])) == {0, 2}
    np.testing.assert_array_equal(Sampler.greedy().probs(z), [[0, 1, 0], [0.5, 0, 0.5]])
    np.testing.assert_array_equal(
        Sampler.from_options(temperature=0.0, top_p=0.9).probs(z), [[0, 1, 0], [0.5, 0, 0.5]]
    )


def test_shapes():
    s = Sampler([TopK(2)])
    assert s.sample(np.zeros(5), seed=0).shape == (1,)
    assert s.sample(np.zeros(5), n=4, seed=0).shape == (4,)
    assert s.sample(np.zeros((3, 5)), n=2, seed=0).shape == (3, 2)
    assert s.sample(np.zeros((2, 3, 5)), n=2, seed=0).shape == (2, 3, 2)
    assert s.sample(np.zeros((2, 5)), seed=0).dtype == np.int64
    assert s.probs(np.zeros((2, 3, 5))).shape == (2, 3, 5)


def test_one_d_equals_first_row_of_batch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(50)
    s = Sampler.from_options(temperature=0.8, top_k=10, top_p=0.9)
    np.testing.assert_array_equal(s.probs(x), s.probs(x[None, :])[0])


def test_per_row_temperature():
    x = np.tile(np.array([2.0, 1.0, 0.0]), (3, 1))
    t = np.array([0.5, 1.0, 2.0])
    p = Sampler([Temperature(t)]).probs(x)
    for row in range(3):
        expected = np.exp(x[row] / t[row]) / np.exp(x[row] / t[row]).sum()
        np.testing.assert_allclose(p[row], expected)


def test_integer_and_list_input():
    s = Sampler([TopK(2)])
    np.testing.assert_allclose(s.probs([1, 2, 3]), s.probs(np.array([1.0, 2.0, 3.0])))
    assert isinstance(s.sample([[1, 2, 3]], seed=0), np.ndarray)


@pytest.mark.parametrize(
    "sampler",
    [
        Sampler.from_options(temperature=0.7, top_k=3, top_p=0.9),  # fused path
        Sampler([Typical(0.9), Temperature(1.2)]),  # plain path
    ],
)
@needs_torch
def test_torch_numpy_and_list_agree(sampler):
    x = np.random.default_rng(8).standard_normal((3, 20)).astype(np.float32)
    xt = torch.from_numpy(x.copy())
    for method in ("logits", "probs"):
        out = getattr(sampler, method)(xt)
        assert isinstance(out, torch.Tensor)
        assert out.dtype == torch.float32
        if method == "logits":  # the same float32 operations: the same numbers
            np.testing.assert_array_equal(out.numpy(), sampler.logits(x))
        else:  # sums associated differently by the two libraries
            np.testing.assert_allclose(out.numpy(), sampler.probs(x), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            getattr(sampler, method)(x.tolist()), getattr(sampler, method)(x), rtol=1e-6
        )
    drawn = sampler.sample(xt, n=4, seed=3)
    assert isinstance(drawn, torch.Tensor)
    assert drawn.dtype == torch.int64
    np.testing.assert_array_equal(drawn.numpy(), sampler.sample(x, n=4, seed=3))
    np.testing.assert_array_equal(xt.numpy(), x)  # input untouched


@needs_torch
def test_torch_half_precision_round_trip():
    x = torch.randn(2, 30, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    s = Sampler.from_options(temperature=0.9, top_p=0.8)
    assert s.probs(x).dtype == torch.bfloat16
    assert s.sample(x, seed=0).dtype == torch.int64


def test_import_does_not_load_torch_or_transformers():
    code = (
        "import sys, thermoscope.sampling as s;"
        "s.Sampler.from_options(top_k=2).sample([1.0, 2.0, 3.0], seed=0);"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_repr_round_trips_the_order():
    s = Sampler([TopP(0.9), Temperature(0.5)])
    assert repr(s).startswith("Sampler([Temperature(")


@pytest.mark.slow
def test_bench_quick_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sampling.py"), "--quick"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "| shape" in out
    assert "top-p 0.9" in out


# -- the fused plan cached per batch shape --------------------------------------


def _plain(warpers, z):
    """The chain run warper by warper (each validates and warps on its own)."""
    for w in warpers:
        z = w(z)
    return z


@pytest.mark.parametrize(
    "options",
    [
        dict(temperature=0.7, top_k=50, top_p=0.9),
        dict(temperature=1.3, top_k=7),
        dict(min_p=0.05),
        dict(temperature=0.5, top_p=0.8, min_p=0.02),
    ],
)
def test_one_sampler_across_batch_shapes_matches_plain_chain_and_fresh_sampler(options):
    rng = np.random.default_rng(11)
    shapes = [(4096,), (1, 4096), (3, 4096), (2, 2, 300), (1, 4096), (4096,), (3, 4096)]
    s = Sampler.from_options(**options)
    for shape in shapes:
        z = (rng.standard_normal(shape) * 3).astype(np.float32)
        got = s.logits(z)
        assert got.shape == z.shape
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, _plain(s.warpers, z))
        np.testing.assert_array_equal(got, Sampler(s.warpers, order="as_given").logits(z))
        np.testing.assert_array_equal(
            s.sample(z, n=3, seed=5), Sampler(s.warpers, order="as_given").sample(z, n=3, seed=5)
        )


def test_cached_plan_with_per_row_parameters_and_uniform_rows():
    rng = np.random.default_rng(12)
    z = (rng.standard_normal((4, 4096)) * 3).astype(np.float32)
    z[2, :100] = -np.inf
    per_row = Sampler([Temperature(np.array([0.5, 0.7, 1.0, 2.0])), TopK(np.array([1, 50, 50, 9]))])
    same_k = Sampler([Temperature(np.array([0.5, 0.7, 1.0, 2.0])), TopK(np.array([50] * 4))])
    for s in (per_row, same_k, per_row, same_k):
        np.testing.assert_array_equal(s.logits(z), _plain(s.warpers, z))
        np.testing.assert_array_equal(s.probs(z), Sampler(s.warpers, order="as_given").probs(z))


def test_cached_plan_does_not_remember_a_rejected_shape():
    s = Sampler([Temperature(np.array([0.5, 2.0])), TopK(2)])
    for _ in range(2):
        with pytest.raises(ValueError, match="`temperature` must be a scalar or have one value"):
            s.logits(np.zeros((3, 5)))
    z = np.array([[1.0, 3.0, 2.0], [0.0, 4.0, 2.0]])
    np.testing.assert_array_equal(s.logits(z), [[-np.inf, 6.0, 4.0], [-np.inf, 2.0, 1.0]])
    with pytest.raises(ValueError, match="`temperature` must be a scalar or have one value"):
        s.logits(np.zeros((3, 5)))


def test_many_batch_shapes_keep_results_exact():
    # More shapes than the cache holds: it is emptied and refilled, results unchanged.
    rng = np.random.default_rng(13)
    s = Sampler.from_options(temperature=0.8, top_k=3, top_p=0.95)
    for rows in range(1, 140):
        z = rng.standard_normal((rows, 6))
        np.testing.assert_array_equal(s.logits(z), _plain(s.warpers, z))


# -- every method on every backend ---------------------------------------------------

BACKEND_KINDS = [
    pytest.param("numpy", np.float64, id="numpy-float64"),
    pytest.param("numpy", np.float32, id="numpy-float32"),
    pytest.param("torch", "float64", id="torch-float64", marks=needs_torch),
    pytest.param("torch", "float32", id="torch-float32", marks=needs_torch),
]
if torch is not None and torch.cuda.is_available():
    BACKEND_KINDS.append(pytest.param("cuda", "float32", id="cuda-float32"))


def make(x: np.ndarray, lib: str, dtype):
    if lib == "numpy":
        return x.astype(dtype)
    device = "cuda" if lib == "cuda" else "cpu"
    return torch.tensor(x, dtype=getattr(torch, dtype), device=device)


def to_host(out):
    if torch is not None and isinstance(out, torch.Tensor):
        return out.to("cpu", torch.float64 if out.is_floating_point() else torch.int64).numpy()
    return out


CHAINS = {
    "fused top-k": Sampler.from_options(temperature=0.7, top_k=20, top_p=0.9),
    "fused top-p": Sampler.from_options(temperature=1.3, top_p=0.8, min_p=0.01),
    "fused min-p": Sampler([MinP(0.05), Temperature(0.6)], order="as_given"),
    "plain": Sampler([Typical(0.9), Epsilon(1e-3), TopNSigma(2.0), EntropyTemperature(0.5, 1.5)]),
    "temperature": Sampler([Temperature(0.8)]),
    "per-row": Sampler([Temperature(np.array([0.5, 0.0, np.inf])), TopK(np.array([1, 3, 50]))]),
}


@pytest.mark.parametrize(("lib", "dtype"), BACKEND_KINDS)
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_every_method_on_every_backend(name, lib, dtype):
    """Same numbers as numpy float64 (1e-6; 1e-5 for float32), of the input's kind and device."""
    sampler = CHAINS[name]
    x64 = np.random.default_rng(21).standard_normal((3, 3000)) * 2
    x64[1, ::7] = -np.inf
    x = make(x64, lib, dtype)
    # The reference: numpy on the very same values, widened to float64 only where numpy
    # computes in float64 too.
    ref_in = to_host(x) if lib != "numpy" else x
    ref_in = ref_in.astype(np.float32) if "32" in str(dtype) else ref_in
    tol = 1e-5 if "32" in str(dtype) else 1e-6
    for method in ("logits", "probs"):
        out = getattr(sampler, method)(x)
        if lib == "numpy":
            assert isinstance(out, np.ndarray)
            assert out.dtype == np.dtype(dtype)
        else:
            assert isinstance(out, torch.Tensor)
            assert out.dtype == getattr(torch, dtype)
            assert out.device == x.device
        want = getattr(sampler, method)(ref_in).astype(np.float64)
        got = to_host(out)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        if method == "probs":
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e-2)
        else:
            np.testing.assert_allclose(got, want, rtol=tol)
    tokens = sampler.sample(x, n=16, seed=np.array([3, 4, 5]), step=2)
    if lib == "numpy":
        assert isinstance(tokens, np.ndarray)
        assert tokens.dtype == np.int64
    else:
        assert isinstance(tokens, torch.Tensor)
        assert tokens.dtype == torch.int64
        assert tokens.device == x.device
    assert tokens.shape == (3, 16)
    np.testing.assert_array_equal(
        to_host(tokens), sampler.sample(ref_in, n=16, seed=np.array([3, 4, 5]), step=2)
    )


@needs_torch
def test_torch_seeds_and_steps_on_the_device_and_no_host_copy(monkeypatch):
    """Seeds and steps as tensors work, and the logits are never turned into numpy."""
    x = torch.randn(4, 500, generator=torch.Generator().manual_seed(1))
    s = Sampler.from_options(temperature=0.7, top_k=20, top_p=0.9)
    want = s.sample(x.numpy().copy(), n=3, seed=np.array([1, 2, 3, 4]), step=np.array([0, 5, 5, 9]))
    for name in ("numpy", "cpu", "detach", "item"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("host copy"))
    got = s.sample(x, n=3, seed=torch.tensor([1, 2, 3, 4]), step=torch.tensor([0, 5, 5, 9]))
    monkeypatch.undo()
    np.testing.assert_array_equal(got.numpy(), want)


@needs_torch
def test_requires_grad_input_is_accepted():
    x = torch.randn(2, 50, requires_grad=True)
    s = Sampler.from_options(temperature=0.7, top_p=0.9)
    assert s.logits(x).requires_grad is False
    assert s.sample(x, seed=0).shape == (2, 1)


@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(3, 32000, generator=torch.Generator().manual_seed(0))  # 3 rows: "per-row"
    for sampler in CHAINS.values():
        cpu = sampler.sample(x, n=4, seed=np.arange(3))
        gpu = sampler.sample(x.cuda(), n=4, seed=np.arange(3))
        assert gpu.device.type == "cuda"
        assert torch.equal(cpu, gpu.cpu())


@pytest.mark.parametrize("t", [1.331145931565033e-150, 1e-40, 1e-30])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_temperature_below_the_dtypes_range_is_the_greedy_limit_on_torch(t, dtype):
    """A positive T that rounds to 0 in the logits' dtype (found by the explorer's fuzz test:
    T = 1.3e-150 on float32 gave NaN probabilities and a token id equal to V)."""
    torch = pytest.importorskip("torch")
    z = torch.randn(3, 40, generator=torch.Generator().manual_seed(0)).to(getattr(torch, dtype))
    s = Sampler([Temperature(t)])
    p = s.probs(z)
    assert p.dtype == z.dtype
    expect = torch.nn.functional.one_hot(z.float().argmax(-1), 40).to(z.dtype)
    assert torch.equal(p, expect)
    assert torch.equal(s.sample(z, n=5, seed=1), z.float().argmax(-1, keepdim=True).expand(3, 5))
