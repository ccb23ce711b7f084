"""generate_at_temperatures, next_token_table, compare_dynamic and the demo on a random GPT-2.

``save_tiny_lm`` (also used by the CLI tests) saves a random-weight GPT-2 and a
byte-level BPE tokenizer trained here with the ``tokenizers`` library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("sacrebleu")

from scipy import stats  # noqa: E402

from thermoscope.generation import (  # noqa: E402
    compare_dynamic,
    continue_prompt,
    dynamic_strategies,
    format_strategies,
    generate_at_temperatures,
    load_model,
    next_token_logits,
    next_token_table,
)
from thermoscope.generation._inputs import torch_seeds  # noqa: E402
from thermoscope.generation.config import generate_kwargs  # noqa: E402
from thermoscope.generation.diversity import diversity  # noqa: E402
from thermoscope.generation.mirostat import Mirostat  # noqa: E402
from thermoscope.generation.processor import SamplerLogitsProcessor  # noqa: E402
from thermoscope.sampling import Sampler  # noqa: E402

CONTEXT = 48
PROMPT = "def parse("

_TEXTS = [
    "def parse(text):\n    return text.split()\n",
    "import os\nfor name in os.listdir('.'):\n    print(name)\n",
    "class Parser:\n    def __init__(self, text):\n        self.text = text\n",
] * 10


def save_tiny_lm(folder: Path, seed: int = 0) -> Path:
    """Save a random-weight GPT-2 (2 layers, 64 wide, context 48) and its tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TEXTS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    eos = fast.eos_token_id
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=CONTEXT,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
        initializer_range=0.2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return save_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def lm(lm_dir):
    return load_model(lm_dir)


@pytest.fixture(scope="module")
def result(lm):
    model, tokenizer = lm
    return generate_at_temperatures(
        model, tokenizer, PROMPT, [0.0, 0.8, 1.5], n=3, max_new_tokens=6, seed=0
    )


def test_one_row_per_sample_and_diversity_per_temperature(lm, result):
    _, tokenizer = lm
    assert result.temperatures == (0.0, 0.8, 1.5)
    assert [s.temperature for s in result.samples] == [0.0] * 3 + [0.8] * 3 + [1.5] * 3
    assert [s.index for s in result.samples] == [0, 1, 2] * 3
    for s in result.samples:
        assert 1 <= len(s.tokens) <= 6
        assert s.text == tokenizer.decode(list(s.tokens), skip_special_tokens=True)
        assert s.mean_logprob < 0
    for t in result.temperatures:
        rows = [s for s in result.samples if s.temperature == t]
        assert result.diversity[t] == diversity([r.tokens for r in rows], [r.text for r in rows])


def test_temperature_zero_is_greedy(lm, result):
    model, tokenizer = lm
    greedy = [s.tokens for s in result.samples if s.temperature == 0.0]
    assert greedy[0] == greedy[1] == greedy[2]
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=6,
            pad_token_id=tokenizer.eos_token_id,
        )
    assert tuple(out[0, ids.shape[1] :].tolist())[: len(greedy[0])] == greedy[0]
    assert result.diversity[0.0].self_bleu == 1.0


def test_mean_logprob_matches_the_generation_time_logits(lm, result):
    # Recompute the T = 0.8 batch by hand, with generate's own logits (not teacher forcing).
    model, tokenizer = lm
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"].repeat(3, 1)
    seed = torch_seeds(0, 3)[1]
    kw = generate_kwargs(
        SamplerLogitsProcessor(Sampler.from_options(temperature=0.8)),
        attention_mask=torch.ones_like(ids),
        max_new_tokens=6,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        out = model.generate(ids, **kw)
    rows = [s for s in result.samples if s.temperature == 0.8]
    for r, sample in enumerate(rows):
        new = out.sequences[r, ids.shape[1] :].tolist()
        assert tuple(new[: len(sample.tokens)]) == sample.tokens
        logp = [
            float(torch.log_softmax(out.logits[s][r], -1)[tok])
            for s, tok in enumerate(sample.tokens)
        ]
        assert sample.mean_logprob == pytest.approx(np.mean(logp), abs=1e-5)


def test_same_seed_same_samples_other_seed_other_samples(lm, result):
    model, tokenizer = lm
    again = generate_at_temperatures(
        model, tokenizer, PROMPT, [0.0, 0.8, 1.5], n=3, max_new_tokens=6, seed=0
    )
    other = generate_at_temperatures(
        model, tokenizer, PROMPT, [0.0, 0.8, 1.5], n=3, max_new_tokens=6, seed=1
    )
    assert again.samples == result.samples
    assert [s.tokens for s in other.samples[3:]] != [s.tokens for s in result.samples[3:]]


def test_global_torch_rng_is_left_alone(lm):
    model, tokenizer = lm
    before = torch.random.get_rng_state()
    generate_at_temperatures(model, tokenizer, PROMPT, [1.0], n=1, max_new_tokens=2)
    assert torch.equal(before, torch.random.get_rng_state())


def test_sampler_options_apply_at_every_temperature(lm, result):
    model, tokenizer = lm
    top1 = generate_at_temperatures(
        model, tokenizer, PROMPT, [0.8, 1.5], n=2, max_new_tokens=6, sampler_options={"top_k": 1}
    )
    greedy = result.samples[0].tokens
    assert all(s.tokens == greedy for s in top1.samples)
    assert top1.sampler_options == {"top_k": 1}


def test_json_and_text(result):
    data = json.loads(json.dumps(result.as_dict()))
    assert len(data["samples"]) == 9
    assert data["samples"][4]["temperature"] == 0.8
    assert [d["temperature"] for d in data["diversity"]] == [0.0, 0.8, 1.5]
    text = result.format()
    assert "T = 0.8" in text
    assert "distinct-2" in text
    assert "mean log p" in text


def test_next_token_table_against_torch_and_scipy(lm):
    model, tokenizer = lm
    table = next_token_table(model, tokenizer, PROMPT, [0.5, 1.0, 2.0], top=7)
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        z = model(input_ids=ids).logits[0, -1].double()
    expected_top = torch.topk(z, 7).indices.numpy()
    np.testing.assert_array_equal(table.token_ids, expected_top)
    for k, t in enumerate([0.5, 1.0, 2.0]):
        p = torch.softmax(z / t, -1).numpy()
        np.testing.assert_allclose(table.probs[k], p[expected_top], rtol=1e-12)
        assert table.entropy[k] == pytest.approx(stats.entropy(p), rel=1e-10)
    assert np.all(np.diff(table.entropy) > 0)  # entropy rises with T
    assert table.tokens[0] == tokenizer.decode([int(expected_top[0])])
    assert json.loads(json.dumps(table.as_dict()))["rows"][1]["temperature"] == 1.0
    assert "entropy" in table.format()


def test_next_token_table_with_truncation_and_top_capped(lm):
    model, tokenizer = lm
    table = next_token_table(
        model, tokenizer, PROMPT, [1.0], top=10_000, sampler_options={"top_k": 3}
    )
    assert table.probs.shape == (1, model.config.vocab_size)
    assert np.count_nonzero(table.probs) == 3
    assert table.probs.sum() == pytest.approx(1.0)


def test_compare_dynamic_one_row_per_strategy(lm):
    model, tokenizer = lm
    strategies = dynamic_strategies([0.7])
    results = compare_dynamic(
        model, tokenizer, PROMPT, strategies=strategies, n=2, max_new_tokens=4, seed=0
    )
    assert [r.name for r in results] == [s.name for s in strategies]
    assert all(len(r.texts) == 2 and r.mean_logprob < 0 for r in results)
    assert all(0 < r.diversity.distinct_2 <= 1 for r in results)
    table = format_strategies(results)
    assert "mirostat tau=3" in table
    assert "entropy T in [0.3, 1.3]" in table
    # Stateful processors are made fresh for every run.
    made = [strategies[2].make()[0], strategies[2].make()[0]]
    assert isinstance(made[0], Mirostat)
    assert made[0] is not made[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": ""}, "`prompt` must not be empty"),
        ({"prompt": "x = 1\n" * 40}, "`prompt` must be shorter than the model's context of 48"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be an integer >= 1"),
        ({"max_new_tokens": 10_000}, "`max_new_tokens` must be <= 2048"),
        ({"max_new_tokens": 47}, r"`max_new_tokens` must be <= \d+ for this prompt"),
        ({"n": 0}, "`n` must be an integer >= 1"),
        ({"n": 1000}, "`n` must be <= 256"),
        ({"temperatures": [0.5, -1.0]}, "`temperatures` must be >= 0"),
        ({"sampler_options": {"temperature": 0.5}}, "`sampler_options` must not set"),
        ({"sampler_options": {"top_p": 1.5}}, r"`top_p` must be in \(0, 1\]"),
        ({"seed": -1}, "`seed` must be an integer >= 0"),
    ],
)
def test_bad_generation_input(lm, kwargs, match):
    model, tokenizer = lm
    args = {"prompt": PROMPT, "temperatures": [1.0], "n": 1, "max_new_tokens": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_at_temperatures(model, tokenizer, **args)


def test_bad_next_token_and_compare_input(lm):
    model, tokenizer = lm
    with pytest.raises(ValueError, match="`top` must be an integer >= 1"):
        next_token_table(model, tokenizer, PROMPT, [1.0], top=0)
    with pytest.raises(ValueError, match="`prompt` must be shorter"):
        next_token_table(model, tokenizer, "x = 1\n" * 40, [1.0])
    with pytest.raises(TypeError, match="`prompt` must be a string"):
        next_token_table(model, tokenizer, 3, [1.0])
    with pytest.raises(ValueError, match="`strategies` must not be empty"):
        compare_dynamic(model, tokenizer, PROMPT, strategies=[])


def test_load_model_rejects_what_is_not_a_causal_lm(tmp_path):
    from transformers import ViTConfig, ViTModel

    with pytest.raises(ValueError, match="`model`"):
        load_model(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="`model`"):
        load_model(empty)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="`model`"):
        load_model(garbage)
    vision = tmp_path / "vit"
    config = ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=8, image_size=8, patch_size=4)  # fmt: skip
    ViTModel(config).save_pretrained(vision)
    with pytest.raises(ValueError, match="`model`"):
        load_model(vision)


def test_generation_demo_writes_its_report(lm_dir, tmp_path):
    from thermoscope.demos.generation import generation_demo

    text = generation_demo(tmp_path / "out", seed=0, quick=True, model=lm_dir)
    assert "T = 0.2" in text
    assert "T = 1.2" in text
    assert "self-BLEU" in text
    written = (tmp_path / "out" / "generation.txt").read_text()
    assert written.strip() in text
    assert (tmp_path / "out" / "generation_diversity.png").stat().st_size > 1000
    assert math.isfinite(float(text.split("mean log p ")[1].split()[0]))


def test_next_token_logits_are_the_last_positions_logits(lm):
    model, tokenizer = lm
    prompt = "the cat sat on"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        # The whole sequence's logits, then the last row: an independent path.
        expected = model(ids).logits[0].double().numpy()[-1]
    got = next_token_logits(model, tokenizer, prompt)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(TypeError, match="`prompt`"):
        next_token_logits(model, tokenizer, 3)


def test_continue_prompt_is_one_seeded_sample_with_off_values_left_out(lm):
    model, tokenizer = lm
    got = continue_prompt(
        model,
        tokenizer,
        "the cat",
        temperature=0.9,
        top_k=0,
        top_p=0.8,
        min_p=0.0,
        max_new_tokens=6,
        seed=3,
    )
    expected = generate_at_temperatures(
        model,
        tokenizer,
        "the cat",
        [0.9],
        n=1,
        max_new_tokens=6,
        seed=3,
        sampler_options={"top_p": 0.8},
        progress=False,
    ).samples[0]
    assert got == expected
