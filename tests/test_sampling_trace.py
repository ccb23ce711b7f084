"""Sampler.trace: the chain stage by stage, and the classic ordering surprises it explains."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from thermoscope.sampling import MinP, Sampler, Temperature, TopK, TopP
from thermoscope.sampling.trace import Trace

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def test_temperature_after_min_p_draws_a_one_percent_token():
    """llama.cpp issue 7498: a ~1% token drawn although min-p is 0.05.

    llama.cpp applies the temperature after min-p: min-p judges the raw
    distribution, where the token has 6 % of the top's probability and stays;
    then T = 0.7 sharpens, and the token ends with about 1 % of the mass, under
    0.05 of the top. With the temperature first (transformers' order) min-p
    judges the sharpened distribution and removes it.
    """
    p = np.array([0.5, 0.3, 0.17, 0.03])
    z = np.log(p)
    rare = 3
    llama = Sampler([Temperature(0.7), MinP(0.05)], order="llama.cpp").trace(z)
    assert llama.order == ("min_p", "temperature")
    assert rare in llama.stages[1].kept_ids  # kept by min-p: 0.03 / 0.5 = 0.06 >= 0.05
    sharp = p ** (1 / 0.7) / (p ** (1 / 0.7)).sum()  # computed independently
    np.testing.assert_allclose(llama.final.probs, sharp, rtol=1e-12)
    assert 0.009 < llama.final.probs[rare] < 0.012
    assert llama.final.probs[rare] / llama.final.probs.max() < 0.05
    hf = Sampler([Temperature(0.7), MinP(0.05)]).trace(z)
    assert hf.order == ("temperature", "min_p")
    assert hf.stages[2].removed_ids.tolist() == [rare]
    assert hf.final.probs[rare] == 0.0


def test_huge_temperature_after_truncation_stays_coherent():
    """llama.cpp issue 6676: T = 100 looks harmless because truncation ran first."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=1000) * 3
    s = Sampler([TopK(40), TopP(0.95), MinP(0.05), Temperature(100.0)], order="llama.cpp")
    t = s.trace(z)
    assert t.order == ("top_k", "top_p", "min_p", "temperature")
    cut = t.stages[-2]
    assert cut.kept < 40
    assert t.final.kept == cut.kept  # the temperature removes nothing
    # Nearly uniform over the few kept tokens: entropy near log(kept), far below log(1000).
    assert abs(t.final.entropy - np.log(cut.kept)) < 0.01
    # transformers' order: T = 100 first flattens everything; top-k 40 then keeps 40
    # near-uniform tokens of the 1000 and top-p cuts little.
    first = Sampler([TopK(40), TopP(0.95), MinP(0.05), Temperature(100.0)]).trace(z)
    assert first.stages[2].kept == 40
    assert first.final.kept > cut.kept


def test_top_p_at_low_temperature_keeps_one_token_or_two_by_order():
    """top-p 0.8 at T 0.5: one token when the temperature sharpens first, two when it runs last."""
    p = np.array([0.65, 0.3, 0.05])
    z = np.log(p)
    sharp = p**2 / (p**2).sum()  # T = 0.5, computed independently
    assert sharp[0] >= 0.8 > p[0]
    hf = Sampler([Temperature(0.5), TopP(0.8)]).trace(z)
    llama = Sampler([Temperature(0.5), TopP(0.8)], order="llama.cpp").trace(z)
    assert hf.final.kept == 1
    assert llama.final.kept == 2
    np.testing.assert_allclose(hf.stages[1].probs, sharp, rtol=1e-12)


def test_each_stage_records_what_it_removed_and_the_input_mass_left():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.06, 0.04]))
    t = Sampler([TopK(3), TopP(0.75)], order="as_given").trace(z)
    first, second = t.stages[1], t.stages[2]
    assert first.removed_ids.tolist() == [3, 4]
    np.testing.assert_allclose(first.removed_mass, 0.1, rtol=1e-12)
    np.testing.assert_allclose(first.mass, 0.9, rtol=1e-12)
    # top-p on the renormalised top 3 (0.444, 0.333, 0.222): 0.444 < 0.75 <= 0.778.
    assert second.kept_ids.tolist() == [0, 1]
    np.testing.assert_allclose(second.mass, 0.7, rtol=1e-12)
    expect = np.array([0.4, 0.3]) / 0.7
    np.testing.assert_allclose(second.entropy, -(expect * np.log(expect)).sum(), rtol=1e-12)
    assert second.top_ids.tolist() == [0, 1]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.floats(0.2, 3.0),
    k=st.integers(1, 30),
    p=st.floats(0.05, 1.0),
)
def test_trace_ends_at_the_samplers_distribution(seed, t, k, p):
    z = np.random.default_rng(seed).normal(size=200) * 2
    for order in ("transformers", "llama.cpp"):
        s = Sampler([Temperature(t), TopK(k), TopP(p)], order=order)
        trace = s.trace(z)
        np.testing.assert_array_equal(np.isfinite(trace.final.logits), s.probs(z) > 0)
        np.testing.assert_allclose(trace.final.probs, s.probs(z), atol=1e-12)
        kept = [st_.kept for st_ in trace.stages]
        assert kept == sorted(kept, reverse=True)  # a chain never adds tokens back
        np.testing.assert_allclose(trace.stages[0].probs, softmax(z), rtol=1e-12)


def test_trace_of_a_tensor_matches_numpy():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(1).normal(size=50)
    s = Sampler([Temperature(0.7), TopK(10), TopP(0.9)])
    a = s.trace(z)
    b = s.trace(torch.tensor(z))
    for x, y in zip(a.stages, b.stages, strict=True):
        np.testing.assert_array_equal(x.kept_ids, y.kept_ids)
        np.testing.assert_allclose(x.probs, y.probs, atol=1e-12)


def test_to_dict_is_strict_json():
    import json

    t = Sampler([TopK(1)]).trace([1.0, 2.0, 0.5])
    text = json.dumps(t.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["order"] == ["top_k"]
    assert back["stages"][1]["logits"] == [None, 2.0, None]


def test_table_names_each_stage_and_its_removals():
    t = Sampler([Temperature(0.5), TopK(2)]).trace(np.log([0.5, 0.3, 0.2]))
    text = t.table(["the", "a", "one"])
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["stage", "kept"]
    assert lines[2].startswith("input")
    assert "Temperature(0.5)" in lines[3]
    assert "TopK(2)" in lines[4]
    assert "1 token" in lines[4]
    assert "one" in lines[4]
    assert isinstance(t, Trace)


def test_trace_refuses_a_batch_and_a_bad_top():
    s = Sampler([TopK(1)])
    with pytest.raises(ValueError, match="`x` must be one row"):
        s.trace(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`top`"):
        s.trace([1.0, 2.0], top=0)
    with pytest.raises(ValueError, match="`logits`"):
        s.trace([np.nan, 1.0])
