"""Engine presets: each builds the chain its engine runs, checked against that engine's logic."""

from __future__ import annotations

import numpy as np
import pytest

from thermoscope.sampling import Sampler
from thermoscope.sampling.engines import ENGINE_PRESETS, EnginePreset, engines_table


def _llama_cpp_default(z: np.ndarray) -> np.ndarray:
    """llama.cpp's default chain written out: top-k 40, top-p 0.95, min-p 0.05, then T 0.8.

    Each truncation is computed on the untempered distribution of the tokens
    still in the list, the way llama-sampling.cpp's samplers shrink it.
    """
    ids = np.argsort(-z, kind="stable")[:40]
    p = np.exp(z[ids] - z[ids].max())
    p /= p.sum()
    cum = np.cumsum(p)
    ids = ids[: int(np.searchsorted(cum, 0.95) + 1)]  # smallest prefix with mass >= 0.95
    keep = z[ids] >= z[ids].max() + np.log(0.05)
    ids = ids[keep]
    out = np.zeros_like(z)
    w = np.exp((z[ids] - z[ids].max()) / 0.8)
    out[ids] = w / w.sum()
    return out


@pytest.mark.parametrize("seed", range(20))
def test_llama_cpp_preset_is_llama_cpps_default_chain(seed):
    z = np.random.default_rng(seed).normal(size=300) * 2.5
    got = ENGINE_PRESETS["llama.cpp"].sampler().probs(z)
    np.testing.assert_allclose(got, _llama_cpp_default(z), atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_transformers_preset_is_generates_sampling_defaults(seed):
    torch = pytest.importorskip("torch")
    from transformers import GenerationConfig

    defaults = GenerationConfig._get_default_generation_params()
    preset = ENGINE_PRESETS["transformers"]
    assert preset.options["top_k"] == defaults["top_k"]
    assert preset.options["temperature"] == defaults["temperature"]
    assert preset.options["top_p"] == defaults["top_p"]
    from transformers.generation.logits_process import TopKLogitsWarper

    z = torch.randn(2, 500, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ref = TopKLogitsWarper(defaults["top_k"])(None, z.clone())
    np.testing.assert_array_equal(
        np.isfinite(preset.sampler().logits(z.numpy())), torch.isfinite(ref).numpy()
    )


@pytest.mark.parametrize("name", ["vllm", "openai"])
def test_vllm_and_openai_defaults_sample_the_model_distribution(name):
    assert ENGINE_PRESETS[name].sampler().warpers == ()


def test_overrides_replace_a_setting_and_keep_the_order():
    s = ENGINE_PRESETS["llama.cpp"].sampler(temperature=0.2, top_k=0)
    assert [w.name for w in s.warpers] == ["top_p", "min_p", "temperature"]
    assert isinstance(s, Sampler)


def test_table_lists_every_preset():
    text = engines_table()
    for name in ENGINE_PRESETS:
        assert name in text
    assert all(isinstance(p, EnginePreset) for p in ENGINE_PRESETS.values())
