"""Mirostat 2.0 against a direct transcription of llama.cpp's llama_sampler_mirostat_v2.

Also: its state and work stay on the scores' device (no host copy or read).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from thermoscope.generation.config import generate_kwargs  # noqa: E402
from thermoscope.generation.mirostat import Mirostat  # noqa: E402


def llama_cpp_mirostat_v2(logits_seq, tau, eta, uniforms):
    """llama_sampler_mirostat_v2_apply, line by line, in float32 as llama.cpp computes.

    Returns, per step: mu before the step, the kept token ids, the selected token.
    """
    mu = np.float32(2.0 * tau)
    tau32, eta32 = np.float32(tau), np.float32(eta)
    mus, kept, selected = [], [], []
    for logits, u in zip(logits_seq, uniforms, strict=True):
        mus.append(float(mu))
        # llama_sampler_softmax_impl(cur_p, true): sort descending, p = exp(l - max) / sum
        order = np.argsort(-logits, kind="stable")
        cur = logits[order].astype(np.float32)
        p = np.exp(cur - cur[0]).astype(np.float32)
        p = (p / p.sum(dtype=np.float32)).astype(np.float32)
        # size = index of the first candidate with -log2(p) > mu, at least 1
        size = next((i for i in range(len(p)) if -np.log2(p[i]) > mu), len(p))
        size = max(size, 1)
        # softmax again over the kept candidates
        q = np.exp(cur[:size] - cur[0]).astype(np.float32)
        q = (q / q.sum(dtype=np.float32)).astype(np.float32)
        # llama_sample_dist: a draw from the kept candidates (inverse CDF with u)
        idx = min(int(np.searchsorted(np.cumsum(q), u * q.sum(), side="right")), size - 1)
        observed_surprise = np.float32(-np.log2(q[idx]))
        e = observed_surprise - tau32
        mu = np.float32(mu - eta32 * e)
        kept.append(set(order[:size].tolist()))
        selected.append(int(order[idx]))
    return mus, kept, selected, float(mu)


def test_mu_and_kept_sets_match_llama_cpp_on_a_fixed_logits_sequence():
    rng = np.random.default_rng(7)
    steps, vocab, rows = 40, 60, 3
    logits = rng.standard_normal((rows, steps, vocab)) * np.array([1.0, 3.0, 6.0])[:, None, None]
    uniforms = rng.random((rows, steps))
    tau, eta = 3.0, 0.3
    ref = [llama_cpp_mirostat_v2(logits[r], tau, eta, uniforms[r]) for r in range(rows)]
    proc = Mirostat(tau=tau, eta=eta)
    ids = torch.zeros((rows, 1), dtype=torch.long)
    for s in range(steps):
        out = proc(ids, torch.tensor(logits[:, s], dtype=torch.float32))
        for r in range(rows):
            assert set(np.flatnonzero(torch.isfinite(out[r]).numpy()).tolist()) == ref[r][1][s]
        chosen = torch.tensor([[ref[r][2][s]] for r in range(rows)])
        ids = torch.cat([ids, chosen], dim=1)
    proc.observe(ids[:, -1])
    for r in range(rows):
        np.testing.assert_allclose([m[r] for m in proc.trace], ref[r][0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(proc.mu[r], ref[r][3], rtol=1e-5, atol=1e-5)
    # The sequences do not all behave alike: truncation actually happened and mu moved.
    assert any(len(k) < vocab for r in range(rows) for k in ref[r][1])
    assert np.ptp(np.array(proc.trace)) > 1.0


def test_mirostat_starts_at_two_tau_and_resets_per_sequence():
    proc = Mirostat(tau=2.0, eta=0.5)
    z = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]))
    proc(torch.tensor([[1], [1]]), z)
    proc(torch.tensor([[1, 2], [1, 0]]), z)
    assert not np.allclose(proc.trace[1], 4.0)
    proc(torch.tensor([[9, 9, 9], [9, 9, 9]]), z)  # new prompt: a new generation
    assert len(proc.trace) == 1
    np.testing.assert_array_equal(proc.trace[0], [4.0, 4.0])
    proc.reset()
    np.testing.assert_array_equal(proc.mu, [4.0])


def test_update_uses_renormalised_probability_in_bits():
    # p = [0.5, 0.25, 0.125, 0.125]; mu = 2.2 keeps the first two: q = [2/3, 1/3].
    proc = Mirostat(tau=1.1, eta=1.0)
    z = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    out = proc(torch.tensor([[0]]), z)
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    proc.observe([1])
    np.testing.assert_allclose(proc.mu, [2.2 - (math.log2(3.0) - 1.1)])


def test_fallback_keeps_the_most_likely_tokens_and_zero_q_rows_keep_mu():
    proc = Mirostat(tau=0.0, eta=0.1)  # mu = 0: nothing has surprise <= 0 but a sure token
    z = torch.tensor([[1.0, 3.0, 3.0, 0.0]])
    out = proc(torch.tensor([[0]]), z)
    assert torch.isfinite(out).tolist() == [[False, True, True, False]]
    proc.observe([0])  # q = 0 (padding of a finished row): no update, no -inf
    np.testing.assert_array_equal(proc.mu, [0.0])


@pytest.fixture(scope="module")
def model() -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=97, n_positions=64, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=None, eos_token_id=None, initializer_range=0.3,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return GPT2LMHeadModel(config).eval()


def test_inside_generate_draws_from_the_truncated_distribution_and_updates_mu(model):
    tau, eta = 2.5, 0.4
    proc = Mirostat(tau=tau, eta=eta)
    ids = torch.tensor([[3, 4, 5], [70, 1, 1]])
    kw = generate_kwargs(
        proc, attention_mask=torch.ones_like(ids), max_new_tokens=10,
        output_scores=True, output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        out = model.generate(ids, **kw)
    new = out.sequences[:, 3:]
    assert len(proc.trace) == 10
    for s in range(10):
        mu = proc.trace[s].numpy()
        logp = torch.log_softmax(out.logits[s].double(), -1).numpy()
        keep = -logp / math.log(2) <= mu[:, None]
        q = np.where(keep, np.exp(logp), 0.0)
        q /= q.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(torch.softmax(out.scores[s], -1).numpy(), q, atol=1e-6)
        tok = new[:, s].numpy()
        assert np.all(q[np.arange(2), tok] > 0)
        if s + 1 < 10:
            surprise = -np.log2(q[np.arange(2), tok])
            np.testing.assert_allclose(proc.trace[s + 1], mu - eta * (surprise - tau), rtol=1e-12)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), [1.0, 2.0]])
@pytest.mark.parametrize("name", ["tau", "eta"])
def test_bad_parameters(name, bad):
    with pytest.raises(ValueError, match=f"`{name}` must"):
        Mirostat(**{name: bad})


def test_observe_checks_the_batch():
    proc = Mirostat()
    proc(torch.tensor([[0], [0]]), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="`tokens` must have one token per batch row"):
        proc.observe([1, 2, 3])


def test_observe_checks_the_tokens():
    proc = Mirostat()
    proc(torch.tensor([[0]]), torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"`tokens` must be ids in \[0, 5\)"):
        proc.observe([5])
    with pytest.raises(TypeError, match="`tokens` must be integer token ids"):
        proc.observe([1.0])
    proc.observe(torch.tensor([4]))
    proc.observe([4])  # nothing pending any more: no effect
    np.testing.assert_allclose(proc.mu, [10.0 - 0.1 * (math.log2(5.0) - 5.0)])


# -- device: the state and the work stay where the scores are ------------------

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _logits(rows, steps, vocab=80, seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, rows, vocab)) * np.array([1.0, 3.0, 6.0])[:rows, None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_on_the_scores_device_and_dtype_and_same_as_float64_cpu(device, dtype):
    logits = _logits(3, 12)
    ref, proc = Mirostat(tau=2.0, eta=0.3), Mirostat(tau=2.0, eta=0.3)
    ids = torch.zeros((3, 1), dtype=torch.long)
    for s in range(12):
        scores = torch.tensor(logits[s], dtype=dtype)  # the values the device gets
        expected = ref(ids, scores.double())
        out = proc(ids.to(device), scores.to(device))
        assert (out.device.type, out.dtype) == (device, dtype)
        assert proc.mu.device.type == device
        assert proc.mu.dtype == torch.float64
        assert torch.equal(torch.isfinite(out).cpu(), torch.isfinite(expected))
        ids = torch.cat([ids, torch.isfinite(expected).to(torch.long).argmax(-1)[:, None]], 1)
    np.testing.assert_allclose(torch.stack(proc.trace).cpu(), torch.stack(ref.trace), rtol=1e-12)


class _NoHostReads(torch.Tensor):
    """A CPU tensor that fails every host read of its values, as a CUDA one would sync."""

    _READS = frozenset(
        {
            torch.Tensor.numpy, torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu,
            torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
            torch.Tensor.__index__, torch.Tensor.__array__, torch.equal, torch.allclose,
        }
    )  # fmt: skip

    allowed = False  # set while the test itself reads results

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls._READS and not cls.allowed:
            raise AssertionError(f"host read of a device value: {func.__name__}")
        return super().__torch_function__(func, types, args, kwargs or {})


def test_steps_read_nothing_from_the_device_even_for_a_new_run_of_continuation_shape():
    logits = _logits(2, 8, seed=9)
    guarded, plain = Mirostat(tau=1.5, eta=0.5), Mirostat(tau=1.5, eta=0.5)
    ids = torch.tensor([[4], [5]])
    for s in range(8):
        if s == 5:  # a new prompt, one token longer than the last ids: a new run
            ids = torch.full((2, ids.shape[1]), 7)
        scores = torch.tensor(logits[s], dtype=torch.float32)
        out = guarded(ids.as_subclass(_NoHostReads), scores.as_subclass(_NoHostReads))
        expected = plain(ids, scores)
        assert torch.equal(torch.isfinite(out).as_subclass(torch.Tensor), torch.isfinite(expected))
        token = torch.isfinite(expected).to(torch.long).argmax(-1)
        ids = torch.cat([ids, token[:, None]], 1)
    assert torch.equal(guarded.mu.as_subclass(torch.Tensor), plain.mu)
    # The trace reads where the run started only when asked: the last 3 steps.
    _NoHostReads.allowed = True
    try:
        trace = [mu.as_subclass(torch.Tensor) for mu in guarded.trace]
    finally:
        _NoHostReads.allowed = False
    assert len(trace) == len(plain.trace) == 3
    assert torch.equal(trace[0], torch.full((2,), 3.0, dtype=torch.float64))
    assert all(torch.equal(a, b) for a, b in zip(trace, plain.trace, strict=True))


@CUDA
def test_cuda_steps_never_synchronize():
    logits = torch.tensor(_logits(3, 6), dtype=torch.float32, device="cuda")
    proc = Mirostat(tau=2.0, eta=0.3)
    ids = torch.zeros((3, 2), dtype=torch.long, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in range(6):
            out = proc(ids, logits[s])
            ids = torch.cat([ids, torch.isfinite(out).to(torch.long).argmax(-1)[:, None]], 1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(proc.trace) == 6
