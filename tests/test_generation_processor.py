"""SamplerLogitsProcessor inside transformers' generate, on a random-weight GPT-2.

Also: the processor keeps the scores on their device (no host copy, no host
read), and seeded draws are batch-invariant (a row's token depends only on
its own logits, seed and sequence length).
"""

from __future__ import annotations

import os
import traceback
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.generation.logits_process import TopPLogitsWarper  # noqa: E402

import thermoscope.sampling  # noqa: E402
from thermoscope.generation.config import check_generation_config, generate_kwargs  # noqa: E402
from thermoscope.generation.processor import SamplerLogitsProcessor  # noqa: E402
from thermoscope.sampling import (  # noqa: E402
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
from thermoscope.sampling.schedules import Cosine, Linear, Piecewise  # noqa: E402

VOCAB = 97  # more than transformers' default top_k of 50


@pytest.fixture(scope="module")
def model() -> GPT2LMHeadModel:
    # initializer_range 0.3 spreads the logits (std ~2.4), so truncation has work to do.
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=None, eos_token_id=None, initializer_range=0.3,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return GPT2LMHeadModel(config).eval()


PROMPT = [[5, 17, 42], [8, 8, 1], [60, 2, 33]]


def run(model, processors, seed=0, steps=6, **kwargs):
    ids = torch.tensor(PROMPT)
    kw = generate_kwargs(
        *processors,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=steps,
        output_scores=True,
        output_logits=True,
        return_dict_in_generate=True,
        **kwargs,
    )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        return model.generate(ids, **kw)


SAMPLERS = {
    "temperature": Sampler.from_options(temperature=0.7),
    "hf chain": Sampler.from_options(temperature=0.8, top_k=10, top_p=0.9),
    "min-p hot": Sampler.from_options(temperature=1.3, min_p=0.1),
    "llama.cpp order": Sampler.from_options(temperature=0.6, top_p=0.8, order="llama.cpp"),
    "typical + epsilon": Sampler([Typical(0.9), Epsilon(0.005)]),
    "top-n-sigma": Sampler([TopNSigma(1.0), Temperature(0.9)], order="as_given"),
    "entropy temperature": Sampler([EntropyTemperature(0.3, 1.5), MinP(0.02)]),
    "greedy": Sampler.greedy(),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_step_samples_from_sampler_probs(model, name):
    sampler = SAMPLERS[name]
    out = run(model, [SamplerLogitsProcessor(sampler)])
    new = out.sequences[:, len(PROMPT[0]) :]
    assert len(out.scores) == new.shape[1] == 6
    for step, (logits, scores) in enumerate(zip(out.logits, out.scores, strict=True)):
        expected = sampler.probs(logits.numpy().astype(np.float64))
        used = torch.softmax(scores, dim=-1).numpy()  # what generate's multinomial draws from
        np.testing.assert_allclose(used, expected, atol=1e-6, err_msg=f"step {step}")
        drawn = new[:, step].numpy()
        assert np.all(expected[np.arange(3), drawn] > 0), f"step {step} drew a removed token"


def test_same_seed_same_text_other_seed_other_text(model):
    sampler = Sampler.from_options(temperature=1.0, top_p=0.95)
    a = run(model, [SamplerLogitsProcessor(sampler)], seed=3, steps=8).sequences
    b = run(model, [SamplerLogitsProcessor(sampler)], seed=3, steps=8).sequences
    c = run(model, [SamplerLogitsProcessor(sampler)], seed=4, steps=8).sequences
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_greedy_sampler_equals_do_sample_false(model):
    ids = torch.tensor(PROMPT)
    mask = torch.ones_like(ids)
    ours = run(model, [SamplerLogitsProcessor(Sampler.greedy())], steps=15).sequences
    with torch.no_grad():
        theirs = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=15)
    assert torch.equal(ours, theirs)


def test_temperature_zero_step_of_a_chain_is_greedy(model):
    out = run(model, [SamplerLogitsProcessor(Sampler.from_options(temperature=0, top_p=0.5))])
    new = out.sequences[:, len(PROMPT[0]) :]
    for step, logits in enumerate(out.logits):
        assert torch.equal(new[:, step], logits.argmax(dim=-1))


@pytest.mark.parametrize(
    "schedule", [Linear(1.5, 0.2, steps=5), Cosine(0.3, 2.0, steps=7), Piecewise((3,), (1.2, 0.4))]
)
def test_schedule_sets_the_temperature_of_each_step(model, schedule):
    proc = SamplerLogitsProcessor(Sampler.from_options(top_k=20), schedule=schedule)
    out = run(model, [proc], steps=9)
    assert proc.temperatures == [schedule(s) for s in range(9)]
    for step, (logits, scores) in enumerate(zip(out.logits, out.scores, strict=True)):
        expected = Sampler([Temperature(schedule(step)), TopK(20)]).probs(logits.double().numpy())
        np.testing.assert_allclose(torch.softmax(scores, -1).numpy(), expected, atol=1e-6)


def test_schedule_with_a_factory_and_greedy_tail(model):
    schedule = Piecewise((4,), (1.0, 0.0))
    proc = SamplerLogitsProcessor(
        lambda t: Sampler.from_options(temperature=t, top_p=0.9), schedule=schedule
    )
    out = run(model, [proc], steps=8)
    new = out.sequences[:, len(PROMPT[0]) :]
    for step, logits in enumerate(out.logits):
        expected = Sampler([Temperature(schedule(step)), TopP(0.9)]).probs(logits.double().numpy())
        np.testing.assert_allclose(torch.softmax(out.scores[step], -1).numpy(), expected, atol=1e-6)
        if step >= 4:
            assert torch.equal(new[:, step], logits.argmax(dim=-1))


def test_schedule_replaces_the_temperature_where_it_stands():
    sampler = Sampler([TopK(2), Temperature(5.0)], order="as_given")
    proc = SamplerLogitsProcessor(sampler, schedule=0.5)
    assert [type(w).__name__ for w in proc.sampler_at(0).warpers] == ["TopK", "Temperature"]
    assert proc.sampler_at(3).warpers[1].temperature == 0.5


def test_processor_restarts_its_steps_for_each_generate_call(model):
    schedule = Linear(1.0, 0.5, steps=4)
    proc = SamplerLogitsProcessor(Sampler(), schedule=schedule)
    run(model, [proc], steps=6)
    first = list(proc.temperatures)
    run(model, [proc], steps=3)
    assert first == [schedule(s) for s in range(6)]
    assert proc.temperatures == [schedule(s) for s in range(3)]


def test_bare_generate_warps_twice_and_generate_kwargs_does_not(model):
    # The hazard generate_kwargs exists for: transformers' default top_k=50.
    proc = SamplerLogitsProcessor(Sampler())
    ids = torch.tensor(PROMPT)
    with torch.no_grad():
        bare = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=2,
            logits_processor=[proc], output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
    assert int(torch.isfinite(bare.scores[0]).sum(dim=-1).max()) == 50
    with pytest.raises(ValueError, match=r"top_k=50 \(transformers' default\)"):
        check_generation_config(model.generation_config, do_sample=True)
    ours = run(model, [SamplerLogitsProcessor(Sampler())], steps=2)
    assert bool(torch.isfinite(ours.scores[0]).all())


def test_generate_kwargs_passes_check_generation_config(model):
    kw = generate_kwargs(SamplerLogitsProcessor(Sampler()), max_new_tokens=3)
    del kw["logits_processor"]
    check_generation_config(model.generation_config, **kw)
    check_generation_config(GenerationConfig(top_k=0), do_sample=True)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"temperature": 0.7}, "temperature"),
        ({"top_k": 50}, "top_k"),
        ({"top_p": 0.9}, "top_p"),
        ({"min_p": 0.05}, "min_p"),
        ({"typical_p": 0.9}, "typical_p"),
        ({"epsilon_cutoff": 3e-4}, "epsilon_cutoff"),
        ({"eta_cutoff": 3e-4}, "eta_cutoff"),
        ({"do_sample": False}, "do_sample"),
        ({"num_beams": 2}, "num_beams"),
        ({"logits_processor": [TopPLogitsWarper(0.9)]}, "logits_processor"),
    ],
)
def test_double_warping_raises(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` must"):
        generate_kwargs(SamplerLogitsProcessor(Sampler()), **kwargs)


def test_neutral_values_are_accepted():
    kw = generate_kwargs(
        SamplerLogitsProcessor(Sampler()), temperature=1.0, top_k=0, top_p=1.0, min_p=None
    )
    assert kw["do_sample"] is True
    assert kw["top_k"] == 0


def test_user_processors_run_before_ours():
    mine = SamplerLogitsProcessor(Sampler())
    other = transformers.RepetitionPenaltyLogitsProcessor(1.2)
    kw = generate_kwargs(mine, logits_processor=[other])
    assert list(kw["logits_processor"]) == [other, mine]


def test_check_generation_config_reports_config_values():
    with pytest.raises(ValueError, match=r"top_p=0.8 \(from the generation config\)"):
        check_generation_config(GenerationConfig(top_p=0.8, top_k=0))
    with pytest.raises(TypeError, match="`generation_config` must be"):
        check_generation_config({"top_k": 0})
    with pytest.raises(ValueError, match="`processors` must"):
        generate_kwargs()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_tensor_in_tensor_out_same_dtype(dtype):
    scores = torch.tensor([[1.0, 3.0, 2.0, -1.0]], dtype=dtype)
    out = SamplerLogitsProcessor(Sampler.from_options(temperature=0.5, top_k=2))(
        torch.tensor([[0]]), scores
    )
    assert out.dtype == dtype
    assert out.device == scores.device
    expected = torch.tensor([[-np.inf, 6.0, 4.0, -np.inf]], dtype=dtype)
    assert torch.equal(out, expected)


def test_bad_construction():
    with pytest.raises(TypeError, match="`sampler` must be a thermoscope Sampler"):
        SamplerLogitsProcessor("top_p=0.9")
    with pytest.raises(ValueError, match="`schedule` must be given with a sampler factory"):
        SamplerLogitsProcessor(lambda t: Sampler())
    with pytest.raises(ValueError, match="at most one Temperature"):
        SamplerLogitsProcessor(
            Sampler([Temperature(1.0), Temperature(2.0)], order="as_given"), schedule=0.5
        )
    with pytest.raises(ValueError, match="`schedule` must be >= 0"):
        SamplerLogitsProcessor(Sampler(), schedule=-1.0)
    bad = SamplerLogitsProcessor(lambda t: "not a sampler", schedule=1.0)
    with pytest.raises(TypeError, match="factory must return a thermoscope Sampler"):
        bad(torch.tensor([[0]]), torch.zeros(1, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3])
def test_processor_equals_sampler_logits_on_tensors(dtype, batch):
    # The processor hands the tensor itself to the Sampler, step after step
    # (non-contiguous views included).
    gen = torch.Generator().manual_seed(batch)
    sampler = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
    proc = SamplerLogitsProcessor(sampler)
    ids = torch.zeros((batch, 2), dtype=torch.long)
    for step in range(3):
        scores = (torch.randn(batch, 4096, generator=gen) * 3).to(dtype)
        if step == 2:
            scores = scores.t().contiguous().t()  # a non-contiguous view
        out = proc(torch.cat([ids, ids[:, :step]], dim=1), scores)
        assert out.dtype == dtype
        assert out.shape == scores.shape
        assert torch.equal(out, sampler.logits(scores))
        kept = torch.isfinite(out)
        assert torch.equal(kept.sum(dim=1) >= 1, torch.ones(batch, dtype=torch.bool))


# -- device: the scores stay where they are ------------------------------------

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
CHAIN = Sampler.from_options(temperature=0.7, top_k=20, top_p=0.9)


def _scores(rows, vocab=300, seed=0, **to):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, vocab, generator=gen, dtype=torch.float64) * 3).to(**to)


def _drawn(out):
    """The token a seeded call returned: its only finite score, which is 0."""
    finite = torch.isfinite(out)
    assert finite.sum(dim=-1).tolist() == [1] * out.shape[0]
    assert bool((out[finite] == 0).all())
    return finite.to(torch.int64).argmax(dim=-1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [None, 5, [5, 6, 7]], ids=["unseeded", "one seed", "per row"])
def test_output_on_the_scores_device_and_dtype(device, dtype, seed):
    scores = _scores(3, device=device, dtype=dtype)
    ids = torch.zeros((3, 4), dtype=torch.long, device=device)
    out = SamplerLogitsProcessor(CHAIN, seed=seed)(ids, scores)
    assert (out.device, out.dtype, out.shape) == (scores.device, dtype, scores.shape)
    if seed is None:
        assert torch.equal(out, CHAIN.logits(scores))
        return
    token = _drawn(out)
    assert token.device == scores.device
    assert bool((CHAIN.probs(scores).gather(-1, token[:, None]) > 0).all())
    # Exactly the Sampler's own counter-based draw, with the sequence length as the step.
    seeds = seed if isinstance(seed, int) else torch.tensor(seed, device=device)
    assert torch.equal(token, CHAIN.sample(scores, seed=seeds, step=4)[:, 0])


# The processor hands the scores to the Sampler, whose own host reads (input
# validation, say) are the Sampler's business and tested with it. These tests
# check that the processor adds none: a read or sync whose Python stack passes
# through the sampling package is put down to the Sampler (and listed), any
# other one fails.
_SAMPLING = str(Path(thermoscope.sampling.__file__).parent) + os.sep


def _outside_sampler(stack):
    """None for a read made by the Sampler's code, else the innermost thermoscope frame."""
    if any(frame.filename.startswith(_SAMPLING) for frame in stack):
        return None
    ours = [f for f in stack if "thermoscope" in f.filename and "tests" not in f.filename]
    return f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "the test itself"


class _NoHostReads(torch.Tensor):
    """A CPU tensor that fails every host read of its values, as a CUDA one would sync.

    torch ops on it return the same subclass, so a ``.item()``, ``bool(...)``,
    ``.numpy()``, ``.tolist()``, ``.cpu()`` or ``torch.equal`` anywhere
    downstream of the scores or the ids is seen: no mock, the real code runs.
    """

    _READS = frozenset(
        {
            torch.Tensor.numpy, torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu,
            torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
            torch.Tensor.__index__, torch.Tensor.__array__, torch.equal, torch.allclose,
        }
    )  # fmt: skip
    by_sampler: ClassVar[list[str]] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls._READS:
            stack = traceback.extract_stack()[:-1]
            where = _outside_sampler(stack)
            if where is not None:
                raise AssertionError(f"host read of a device value ({func.__name__}) at {where}")
            cls.by_sampler.append(f"{func.__name__} at {stack[-1].filename}:{stack[-1].lineno}")
        return super().__torch_function__(func, types, args, kwargs or {})


def test_no_host_read_of_scores_or_ids():
    scores = _scores(3).float().as_subclass(_NoHostReads)
    with pytest.raises(AssertionError, match="host read"):
        bool(scores.amax() > 0)  # the guard works
    ids = torch.zeros((3, 4), dtype=torch.long)
    procs = [
        SamplerLogitsProcessor(CHAIN),
        SamplerLogitsProcessor(CHAIN, seed=[1, 2, 3], pad_token_id=0),
        SamplerLogitsProcessor(CHAIN, seed=9),
    ]
    plain = []
    for step in range(3):
        now = torch.cat([ids, torch.ones((3, step), dtype=torch.long)], 1)
        outs = [proc(now.as_subclass(_NoHostReads), scores) for proc in procs]
        assert all(out.shape == scores.shape for out in outs)
        plain.append([out.as_subclass(torch.Tensor) for out in outs])
    assert torch.equal(plain[0][0], CHAIN.logits(scores.as_subclass(torch.Tensor)))


@CUDA
def test_cuda_calls_add_no_synchronization():
    # transformers' generate on CUDA reads one flag per step; the processor adds none.
    scores = _scores(4, vocab=5000, device="cuda", dtype=torch.float32)
    ids = torch.zeros((4, 3), dtype=torch.long, device="cuda")
    procs = [
        SamplerLogitsProcessor(CHAIN),
        SamplerLogitsProcessor(CHAIN, seed=[1, 2, 3, 4], pad_token_id=0),
        SamplerLogitsProcessor(CHAIN, seed=9),
    ]
    for proc in procs:
        proc(ids, scores)  # the first call moves the per-row seeds to the device
    torch.cuda.synchronize()
    ours, theirs = [], []

    def seen(message, category, filename, lineno, file=None, line=None):
        if "called a synchronizing CUDA operation" not in str(message):
            return  # e.g. the "prototype feature" notice of set_sync_debug_mode itself
        stack = traceback.extract_stack()[:-1]
        where = _outside_sampler(stack)
        if where is None:
            theirs.append(f"{filename}:{lineno}")
        else:  # say where, with the warning and the innermost frames, to find it
            frames = " <- ".join(f"{f.filename}:{f.lineno}" for f in reversed(stack[-4:]))
            ours.append(f"{where}: {str(message)[:80]} [{frames}]")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = seen
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for proc in procs:
                for step in range(1, 3):
                    proc(torch.cat([ids, ids[:, :step]], 1), scores)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert ours == [], f"synchronizations outside the Sampler: {ours}"


# -- seeded draws: batch-invariant ----------------------------------------------

PAD = 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seeded_row_draws_the_same_token_alone_and_in_any_batch(dtype):
    # Five requests with their own logits and seeds, decoded for 6 steps alone
    # and inside batches of every size and order: identical tokens.
    vocab, steps = 500, 6
    logits = _scores(5 * steps, vocab, seed=3, dtype=dtype).reshape(5, steps, vocab)
    seeds = [11, 12, 13, 2**40, 0]
    sampler = Sampler.from_options(temperature=1.2, min_p=0.01)

    def decode(rows):
        proc = SamplerLogitsProcessor(sampler, seed=[seeds[r] for r in rows])
        ids = torch.full((len(rows), 4), 7)
        for s in range(steps):
            token = _drawn(proc(ids, logits[rows, s]))
            ids = torch.cat([ids, token[:, None]], dim=1)
        return ids[:, 4:]

    alone = [decode([r])[0] for r in range(5)]
    for rows in ([0, 1, 2, 3, 4], [4, 2, 0], [3, 1], [2, 2, 2]):
        together = decode(rows)
        for i, r in enumerate(rows):
            assert torch.equal(together[i], alone[r]), (rows, r)
    assert len({tuple(a.tolist()) for a in alone}) == 5  # the seeds do differ


def test_one_seed_for_all_rows_same_logits_same_token():
    scores = _scores(1).repeat(4, 1)
    token = _drawn(
        SamplerLogitsProcessor(Sampler(), seed=3)(torch.zeros((4, 2), dtype=torch.long), scores)
    )
    assert token.tolist() == [token[0].item()] * 4
    alone = _drawn(
        SamplerLogitsProcessor(Sampler(), seed=3)(torch.zeros((1, 2), dtype=torch.long), scores[:1])
    )
    assert torch.equal(alone, token[:1])


def test_the_step_is_the_sequence_length():
    # Calls are stateless: the same length draws the same token, another length
    # (almost surely) another one, whatever came before.
    scores = _scores(1, vocab=10_000)
    proc = SamplerLogitsProcessor(Sampler(), seed=5)
    a = [
        _drawn(proc(torch.zeros((1, n), dtype=torch.long), scores)).item()
        for n in (3, 4, 5, 6, 7, 8)
    ]
    b = [
        _drawn(proc(torch.zeros((1, n), dtype=torch.long), scores)).item()
        for n in (8, 7, 6, 5, 4, 3)
    ]
    assert a == b[::-1]
    assert len(set(a)) > 1


def test_leading_pad_tokens_do_not_count_with_pad_token_id():
    scores = _scores(3, vocab=10_000)
    prompt = [PAD, 5, 9]  # a prompt that itself starts with the pad token
    alone = SamplerLogitsProcessor(Sampler(), seed=[4], pad_token_id=PAD)
    expected = _drawn(alone(torch.tensor([prompt]), scores[1:2]))
    batch = torch.tensor([[3, 3, 3, 3, 3], [PAD, PAD, *prompt], [PAD, 8, 8, 8, 8]])
    proc = SamplerLogitsProcessor(Sampler(), seed=[1, 4, 2], pad_token_id=PAD)
    assert torch.equal(_drawn(proc(batch, scores))[1:2], expected)
    # Without pad_token_id the padded length is the step: another draw.
    unpadded = SamplerLogitsProcessor(Sampler(), seed=[1, 4, 2])
    assert not torch.equal(_drawn(unpadded(batch, scores))[1:2], expected)


def test_inside_generate_a_row_token_depends_only_on_its_logits_seed_and_length(model):
    # Generating a prompt alone and inside a left-padded batch does not give
    # bitwise-equal logits on this model (batched and single forwards differ by
    # ~5e-6: other matmul shapes), so the tokens cannot be compared across runs
    # exactly. Instead: one batched, left-padded generate, and every drawn token
    # is replayed from that row's own logits, seed and unpadded ids alone.
    prompts = [[5, 17, 42], [8, 1], [60, 2, 33, 9, 4]]
    seeds = [21, 22, 23]
    width, steps = max(map(len, prompts)), 8
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    sampler = Sampler.from_options(temperature=1.1, top_p=0.95)
    proc = SamplerLogitsProcessor(sampler, seed=seeds, pad_token_id=PAD)
    kw = generate_kwargs(
        proc, attention_mask=mask, max_new_tokens=steps, pad_token_id=PAD,
        output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    with torch.no_grad():
        out = model.generate(ids, **kw)
    new = out.sequences[:, width:]
    for r, prompt in enumerate(prompts):
        alone = SamplerLogitsProcessor(sampler, seed=seeds[r])
        for s in range(steps):
            prefix = torch.tensor([prompt + new[r, :s].tolist()])
            token = _drawn(alone(prefix, out.logits[s][r : r + 1]))
            assert token.item() == new[r, s].item(), (r, s)
    # And it is the seeds that decide, not generate's torch.manual_seed.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1234)
        again = model.generate(ids, **kw)
    assert torch.equal(again.sequences, out.sequences)


def test_seeded_generate_samples_from_sampler_probs(model):
    # Over many seeds, the first token's frequencies follow sampler.probs.
    sampler = Sampler.from_options(temperature=1.5, top_k=5)
    ids = torch.tensor([PROMPT[0]] * 400)
    proc = SamplerLogitsProcessor(sampler, seed=torch.arange(400))
    kw = generate_kwargs(
        proc, attention_mask=torch.ones_like(ids), max_new_tokens=1,
        output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    with torch.no_grad():
        out = model.generate(ids, **kw)
    probs = sampler.probs(out.logits[0][0].double())
    counts = torch.bincount(out.sequences[:, -1], minlength=VOCAB).double() / 400
    assert bool((counts[probs == 0] == 0).all())
    assert float((counts - probs).abs().max()) < 0.1


def test_schedule_with_seed_and_a_new_run_of_continuation_shape():
    # A new prompt exactly one token longer than the previous call's ids, same
    # batch: the tokens tell it is a new generation (step 0 of the schedule).
    schedule = Linear(1.0, 0.1, steps=3)
    proc = SamplerLogitsProcessor(Sampler.from_options(top_k=3), schedule=schedule, seed=[1, 2])
    scores = _scores(2)
    proc(torch.tensor([[1, 2], [3, 4]]), scores)
    proc(torch.tensor([[1, 2, 5], [3, 4, 6]]), scores)
    assert proc.temperatures == [1.0, schedule(1)]
    out = proc(torch.tensor([[9, 9, 9, 9], [9, 9, 9, 9]]), scores)
    assert proc.temperatures == [1.0]
    fresh = SamplerLogitsProcessor(Sampler.from_options(top_k=3), schedule=schedule, seed=[1, 2])
    assert torch.equal(out, fresh(torch.tensor([[9, 9, 9, 9], [9, 9, 9, 9]]), scores))


def test_bad_seeds():
    scores = torch.zeros((2, 5))
    with pytest.raises(ValueError, match="`seed` must have one seed per batch row"):
        SamplerLogitsProcessor(Sampler(), seed=[1, 2, 3])(
            torch.zeros((2, 1), dtype=torch.long), scores
        )
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0"):
        SamplerLogitsProcessor(Sampler(), seed=[1, -2])
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0"):
        SamplerLogitsProcessor(Sampler(), seed=-1)
    with pytest.raises(ValueError, match="`seed` must be one integer or one integer per"):
        SamplerLogitsProcessor(Sampler(), seed=[[1, 2]])
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        SamplerLogitsProcessor(Sampler(), seed=1.5)
    with pytest.raises(ValueError, match="`pad_token_id` must come with `seed`"):
        SamplerLogitsProcessor(Sampler(), pad_token_id=0)
    assert SamplerLogitsProcessor(Sampler(), seed=torch.tensor([3, 4])).seed.tolist() == [3, 4]
    assert SamplerLogitsProcessor(Sampler(), seed=np.int64(3)).seed == 3
