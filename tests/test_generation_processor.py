"""SamplerLogitsProcessor inside transformers' generate, on a random-weight GPT-2."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.generation.logits_process import TopPLogitsWarper  # noqa: E402

from thermoscope.generation.processor import (  # noqa: E402
    SamplerLogitsProcessor,
    check_generation_config,
    generate_kwargs,
)
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
    assert proc.sampler_at(3).warpers[1].t == 0.5


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
    # The processor's own numpy round trip (CPU float32/float64) and the
    # Sampler's generic torch path give the same tensor, step after step.
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
