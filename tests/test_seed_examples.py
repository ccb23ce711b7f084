"""Worked examples from the source documents (/work/shared/seeds/), recomputed.

Every number is recomputed from first principles (closed forms, scipy) and
thermoscope must agree with that, not with the seed. Where a seed prints a
wrong number, a test pins the discrepancy and quotes the seed.

Seeds: 000 (Softmax temperature, principles and free energy), 001 (temperature
in ML, overview), 002 (temperature sampling notebook), 003 (next-token
prediction, day/space/... table), 004 (cat/dog/fish worked example).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as ss

from thermoscope.core import (
    effective_temperature,
    entropy,
    free_energy,
    log_softmax,
    max_probability,
    reweight,
    softmax,
    temperature_for_entropy,
)

pytestmark = pytest.mark.filterwarnings("error")


def closed_form_softmax(z, t) -> np.ndarray:
    """exp(z_i / T) / sum_j exp(z_j / T), written out (no max-shift needed here)."""
    e = [math.exp(v / t) for v in z]
    s = math.fsum(e)
    return np.array([v / s for v in e])


def nucleus(p, top_p) -> list[int]:
    """Indices kept by top-p: sort descending, keep until the cumulative sum reaches top_p."""
    order = sorted(range(len(p)), key=lambda i: -p[i])
    kept, total = [], 0.0
    for i in order:
        kept.append(i)
        total += p[i]
        if total >= top_p:
            break
    return kept


# ========================================================================= seed 004: cat/dog/fish
CDF = [2.0, 1.0, 0.5]  # "cat:2.0 dog:1.0 fish:0.5"
CDF_TRUE = {
    1.0: closed_form_softmax(CDF, 1.0),  # [0.6285, 0.2312, 0.1402]
    0.5: closed_form_softmax(CDF, 0.5),  # [0.8438, 0.1142, 0.0420]
    2.0: closed_form_softmax(CDF, 2.0),  # [0.4810, 0.2918, 0.2272]
}


@pytest.mark.parametrize("t", [1.0, 0.5, 2.0])
def test_seed004_cat_dog_fish_thermoscope_matches_closed_form(t):
    np.testing.assert_allclose(softmax(CDF, t), CDF_TRUE[t], rtol=1e-14)
    np.testing.assert_allclose(sc.softmax(np.array(CDF) / t), CDF_TRUE[t], rtol=1e-14)
    np.testing.assert_allclose(np.exp(log_softmax(CDF, t)), CDF_TRUE[t], rtol=1e-14)


def test_seed004_t1_numbers_are_wrong():
    # Seed 004: "p(cat) ... ≈ 0.67", "p(dog) ... ≈ 0.24", "p(fish) ... ≈ 0.09"
    seed = np.array([0.67, 0.24, 0.09])
    true = CDF_TRUE[1.0]  # 0.6285, 0.2312, 0.1402
    np.testing.assert_allclose(true, [0.6285, 0.2312, 0.1402], atol=1e-4)
    assert abs(seed[0] - true[0]) > 0.04  # cat: 0.67 vs 0.6285
    assert abs(seed[2] - true[2]) > 0.05  # fish: 0.09 vs 0.1402
    # (dog happens to round right: 0.24 vs 0.2312 is within 0.01)
    assert abs(seed[1] - true[1]) < 0.01


def test_seed004_low_temperature_numbers_are_wrong():
    # Seed 004, T=0.5: "p(cat) ≈ 0.95", "p(dog) ≈ 0.05", "p(fish) ≈ 0.00"
    seed = np.array([0.95, 0.05, 0.00])
    true = CDF_TRUE[0.5]
    np.testing.assert_allclose(true, [0.8438, 0.1142, 0.0420], atol=1e-4)
    assert np.all(np.abs(seed - true) > 0.04)
    # exp(4), exp(2), exp(1): the formula the seed writes out, evaluated
    e = np.exp([4.0, 2.0, 1.0])
    np.testing.assert_allclose(softmax(CDF, 0.5), e / e.sum(), rtol=1e-14)


def test_seed004_high_temperature_numbers_are_wrong():
    # Seed 004, T=2.0: "p(cat) ≈ 0.55", "p(dog) ≈ 0.35", "p(fish) ≈ 0.10"
    seed = np.array([0.55, 0.35, 0.10])
    true = CDF_TRUE[2.0]
    np.testing.assert_allclose(true, [0.4810, 0.2918, 0.2272], atol=1e-4)
    assert np.all(np.abs(seed - true) > 0.05)


def test_seed004_qualitative_claims_hold():
    # "低温度...更加集中", "高温度...更加平缓": true, even though the numbers are not.
    h = [float(entropy(softmax(CDF, t))) for t in (0.5, 1.0, 2.0)]
    m = [float(max_probability(softmax(CDF, t))) for t in (0.5, 1.0, 2.0)]
    assert h[0] < h[1] < h[2]
    assert m[0] > m[1] > m[2]
    np.testing.assert_allclose(
        h, [float(ss.entropy(CDF_TRUE[t])) for t in (0.5, 1.0, 2.0)], rtol=1e-13
    )
    # greedy sampling picks "cat": the T -> 0 limit is one-hot on cat
    np.testing.assert_array_equal(softmax(CDF, 0.0), [1.0, 0.0, 0.0])


def test_seed004_top_p_walkthrough_is_wrong():
    # Seed 004: "假设 p=0.9 ... 0.67(cat) + 0.24(dog) = 0.91(超过0.9)
    #            因此,模型只从“cat”和“dog”中随机选择一个单词。"
    seed_p = [0.67, 0.24, 0.09]
    assert nucleus(seed_p, 0.9) == [0, 1]  # consistent with its own (wrong) numbers
    true = softmax(CDF, 1.0)
    assert true[0] + true[1] == pytest.approx(0.8598, abs=1e-4)  # < 0.9, not 0.91
    assert nucleus(list(true), 0.9) == [0, 1, 2]  # nucleus keeps all three words


def test_seed004_top_k_renormalised():
    # Top-K with K=2 samples cat/dog in proportion to their probabilities:
    # renormalised, cat gets sigmoid(2 - 1) = 0.7311 (the seed does not print this).
    p = softmax(CDF, 1.0)
    kept = p[:2] / p[:2].sum()
    np.testing.assert_allclose(kept, [sc.expit(1.0), sc.expit(-1.0)], rtol=1e-14)
    np.testing.assert_allclose(softmax(CDF[:2], 1.0), kept, rtol=1e-14)


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_seed004_reweight_formula(t):
    # Seed 004: P'(w) = exp(log P(w) / T) / sum_w' exp(log P(w') / T)
    p = CDF_TRUE[1.0]
    q = np.exp(np.log(p) / t)
    q = q / q.sum()
    np.testing.assert_allclose(reweight(p, t), q, rtol=1e-13)
    np.testing.assert_allclose(reweight(p, t), CDF_TRUE[t], rtol=1e-13)


# ========================================================================= seed 003: token table
TOKENS = ["day", "space", "furniture", "experience", "problem", "challenge"]
TOKEN_LOGITS = [5.0, 2.2, 2.0, 4.5, 3.0, 2.7]
# Seed 003's printed table ("probabilities" column)
TOKEN_PRINTED = [0.512106, 0.031141, 0.025496, 0.310608, 0.069306, 0.051343]


def test_seed003_probability_table_is_right():
    true = closed_form_softmax(TOKEN_LOGITS, 1.0)
    np.testing.assert_allclose(TOKEN_PRINTED, true, atol=6e-7)
    np.testing.assert_allclose(softmax(TOKEN_LOGITS), true, rtol=1e-14)
    np.testing.assert_allclose(softmax(TOKEN_LOGITS, 1.0), sc.softmax(TOKEN_LOGITS), rtol=1e-14)


def test_seed003_first_table_logits_do_not_give_the_printed_probabilities():
    # Seed 003's first table lists logits "day 40, space 4, furniture 2, experience 35,
    # problem 25, challenge 15", but its code and printed probabilities use
    # [5, 2.2, 2.0, 4.5, 3.0, 2.7]. With the first table, day would get 0.9933, not 0.512.
    first = [40.0, 4.0, 2.0, 35.0, 25.0, 15.0]
    p = softmax(first)
    assert p[0] == pytest.approx(
        1 / (1 + math.exp(-5) + math.exp(-15) + math.exp(-25) + math.exp(-36) + math.exp(-38)),
        rel=1e-14,
    )
    assert abs(p[0] - TOKEN_PRINTED[0]) > 0.4


def test_seed003_t0_guard_equals_greedy_limit():
    # Seed 003 replaces T <= 0 by 1e-10; thermoscope treats T = 0 as the exact limit.
    z = np.array(TOKEN_LOGITS)
    scaled = z / 1e-10
    e = np.exp(scaled - scaled.max())
    np.testing.assert_array_equal(softmax(z, 0.0), e / e.sum())
    np.testing.assert_array_equal(softmax(z, 0.0), [1, 0, 0, 0, 0, 0])


def test_seed003_lowering_t_drives_top_token_to_one():
    # "降低温度则会使最可能标记的概率接近 1.0"
    for t, bound in [(0.1, 0.99), (0.05, 0.9999), (0.01, 1 - 1e-15)]:
        p = softmax(TOKEN_LOGITS, t)
        assert p[0] >= bound
        np.testing.assert_allclose(p, closed_form_softmax(TOKEN_LOGITS, t), rtol=1e-12, atol=1e-300)
    # runner-up "experience" is 0.5 below: 1 - p(day) ~ exp(-0.5 / T)
    assert 1 - softmax(TOKEN_LOGITS, 0.05)[0] == pytest.approx(math.exp(-10), rel=1e-3)


def test_seed003_raising_t_does_not_raise_every_unlikely_token():
    # "提高温度会增加较不可能的标记的概率": true for the tail, but not for every
    # token below the top one: "experience" (2nd) falls from 0.311 (T=1) to 0.266 (T=2).
    p1 = softmax(TOKEN_LOGITS, 1.0)
    p2 = softmax(TOKEN_LOGITS, 2.0)
    np.testing.assert_allclose(p2, closed_form_softmax(TOKEN_LOGITS, 2.0), rtol=1e-14)
    assert p2[3] < p1[3] - 0.04
    for i in (1, 2, 4, 5):  # space, furniture, problem, challenge all rise
        assert p2[i] > p1[i]
    assert p2[0] < p1[0]


def test_seed003_temperature_for_entropy_on_table():
    t = temperature_for_entropy(TOKEN_LOGITS, 1.0)
    assert float(ss.entropy(closed_form_softmax(TOKEN_LOGITS, t))) == pytest.approx(1.0, abs=1e-10)


# ========================================================================= seed 002: notebook
def test_seed002_reweight_example():
    # test_logits = [2.0, 1.0, 0.1], T = 0.5: "方法1 == 方法2"
    z = np.array([2.0, 1.0, 0.1])
    p = sc.softmax(z)
    np.testing.assert_allclose(p, [0.6590, 0.2424, 0.0986], atol=1e-4)
    true = closed_form_softmax(z, 0.5)
    np.testing.assert_allclose(true, [0.8638, 0.1169, 0.0193], atol=1e-4)
    np.testing.assert_allclose(softmax(z, 0.5), true, rtol=1e-14)
    np.testing.assert_allclose(reweight(softmax(z), 0.5), true, rtol=1e-13)
    # the seed's own log(p + 1e-10) version differs only by ~1e-10
    q = np.exp(np.log(p + 1e-10) / 0.5)
    assert np.max(np.abs(q / q.sum() - true)) < 1e-9


def test_seed002_epsilon_hack_breaks_zeros_at_high_temperature():
    # Seed 002: logits = np.log(original_probs + 1e-10)  # 加小常数避免log(0)
    # At T = 10 a zero-probability word gets (1e-10) ** 0.1 = 0.1 weight: ~5% mass.
    p = np.array([0.5, 0.5, 0.0])
    q = np.exp(np.log(p + 1e-10) / 10.0)
    seed_value = (q / q.sum())[2]
    assert seed_value == pytest.approx(0.1 / (2 * 0.5**0.1 + 0.1), rel=1e-6)
    assert abs(seed_value - 0.0) > 0.05
    assert reweight(p, 10.0)[2] == 0.0


def _seed002_logits() -> np.ndarray:
    # np.random.seed(42); logits = np.random.randn(20) * 2; sorted descending
    rng = np.random.RandomState(42)
    return np.sort(rng.randn(20) * 2)[::-1]


def test_seed002_entropy_and_max_probability_vs_temperature():
    z = _seed002_logits()
    ts = np.linspace(0.1, 5.0, 50)
    i1 = int(np.argmin(np.abs(ts - 1.0)))
    # the notebook reports entropies[0], entropies[i1], entropies[-1] (T = 0.1, 1.0, 5.0)
    for t in (ts[0], ts[i1], ts[-1]):
        p_ref = sc.softmax(z / t)
        p = softmax(z, t)
        assert float(entropy(p)) == pytest.approx(float(ss.entropy(p_ref)), rel=1e-12)
        assert float(max_probability(p)) == pytest.approx(p_ref.max(), rel=1e-12)
        # the seed's compute_entropy adds 1e-10 inside the log: a negligible bias
        seed_h = -np.sum(p_ref * np.log(p_ref + 1e-10))
        assert abs(seed_h - float(entropy(p))) < 1e-8
    np.testing.assert_allclose(
        [float(entropy(softmax(z, t))) for t in (0.1, 1.0, 5.0)],
        [0.5572, 1.8393, 2.9266],
        atol=1e-4,
    )
    np.testing.assert_allclose(
        [float(max_probability(softmax(z, t))) for t in (0.1, 1.0, 5.0)],
        [0.7547, 0.3569, 0.0939],
        atol=1e-4,
    )
    # "均匀分布的理论最大熵: np.log(vocab_size)" = ln 20
    assert float(entropy(softmax(z, np.inf))) == pytest.approx(math.log(20), rel=1e-14)
    h = [float(entropy(softmax(z, t))) for t in ts]
    assert np.all(np.diff(h) > 0)
    assert h[-1] < math.log(20)


def test_seed002_t01_is_not_almost_one_hot_for_its_own_logits():
    # Seed 002: "T=0.1: 分布极度尖锐，几乎所有概率集中在最高logit项"
    # Its two top logits (3.158, 3.046) are only 0.11 apart: at T=0.1 the top item
    # gets 0.755 and the runner-up 0.245 -- far from "almost all".
    z = _seed002_logits()
    p = softmax(z, 0.1)
    assert p[0] == pytest.approx(sc.expit((z[0] - z[1]) / 0.1), abs=1e-4)
    assert abs(p[0] - 1.0) > 0.2


def test_seed002_sampling_example_concentration():
    # "T=0.2: 采样高度集中在概率最高的词（'the', 'a'）"
    sim = np.array(
        [
            3.0,
            2.5,
            1.0,
            0.8,
            1.5,
            1.2,
            0.5,
            0.6,
            0.3,
            0.2,
            0.4,
            0.1,
            0.7,
            0.0,
            1.1,
            0.9,
            0.4,
            0.8,
            0.3,
            0.6,
        ]
    )
    p = softmax(sim, 0.2)
    assert p[0] + p[1] > 0.999
    np.testing.assert_allclose(p[:2], sc.softmax(sim / 0.2)[:2], rtol=1e-13)
    assert (
        float(entropy(softmax(sim, 0.2)))
        < float(entropy(softmax(sim, 1.0)))
        < float(entropy(softmax(sim, 2.0)))
    )


# ========================================================================= seed 000: principles
def test_seed000_limits_entropy_zero_and_log_k():
    z = np.array([1.3, -0.2, 0.4, 2.2])
    assert float(entropy(softmax(z, 1e-3))) < 1e-100
    assert float(entropy(softmax(z, 0.0))) == 0.0
    assert float(entropy(softmax(z, 1e6))) == pytest.approx(math.log(4), abs=1e-11)
    np.testing.assert_allclose(softmax(z, 1e9), np.full(4, 0.25), atol=1e-9)


def test_seed000_free_energy_minimiser():
    z = np.array([1.3, -0.2, 0.4, 2.2])
    t = 0.8
    f_star = float(free_energy(softmax(z, t), z, t))
    assert f_star == pytest.approx(-t * float(sc.logsumexp(z / t)), rel=1e-13)
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(4), size=2000)
    assert np.all(free_energy(q, np.tile(z, (2000, 1)), t) > f_star)


def test_seed000_weight_and_temperature_only_enter_as_a_ratio_without_bias():
    # Seed 000: z_k = alpha w_k.x + b_k; "无法区分一个权重缩放为 alpha、温度为 T 的模型，
    # 和另一个权重缩放为 2 alpha、温度为 2T 的模型" -- true only when b = 0 (or b is
    # scaled too): the seed's own formula keeps b_k / T, which halves when T doubles.
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 4))
    x = rng.normal(size=4)
    b = np.array([1.5, -2.0, 0.0])
    alpha, t = 0.7, 0.9
    no_bias_1 = softmax(alpha * (w @ x), t)
    no_bias_2 = softmax(2 * alpha * (w @ x), 2 * t)
    np.testing.assert_allclose(no_bias_1, no_bias_2, rtol=1e-13)
    np.testing.assert_allclose(no_bias_1, sc.softmax(alpha * (w @ x) / t), rtol=1e-13)
    with_bias_1 = softmax(alpha * (w @ x) + b, t)
    with_bias_2 = softmax(2 * alpha * (w @ x) + b, 2 * t)
    assert np.max(np.abs(with_bias_1 - with_bias_2)) > 0.01  # the seed's claim fails with a bias
    np.testing.assert_allclose(softmax(2 * alpha * (w @ x) + 2 * b, 2 * t), with_bias_1, rtol=1e-13)


def test_seed000_l2_shrinkage_is_temperature_one_over_alpha():
    # "这在数学上等同于保持原始 logits z 不变，并应用一个有效温度 T_eff = 1/alpha"
    rng = np.random.default_rng(2)
    w = rng.normal(size=(5, 8))
    x = rng.normal(size=(10, 8))
    for alpha in (0.9, 0.5, 0.2):
        assert effective_temperature(alpha) == pytest.approx(1 / alpha, rel=1e-15)
        np.testing.assert_allclose(
            softmax(x @ (alpha * w).T), softmax(x @ w.T, 1 / alpha), rtol=1e-12
        )
        np.testing.assert_allclose(
            softmax(x @ (alpha * w).T), sc.softmax((x @ w.T) * alpha, axis=-1), rtol=1e-12
        )


def test_seed000_calibration_logit_gap_scales_with_temperature():
    # "缩放后的 logit 差值恰好为 ln(q/(1-q)) ... 与 T 呈线性缩放关系"
    for q in (0.6, 0.8, 0.95):
        for t in (0.5, 1.0, 3.0):
            gap = t * math.log(q / (1 - q))
            assert softmax([gap, 0.0], t)[0] == pytest.approx(q, rel=1e-13)


def test_seed000_order_is_preserved():
    # "对于任何正温度 T，用 T 去除所有 logits 并不会改变它们的顺序"
    z = np.array([0.3, 2.0, -1.0, 1.1, 0.9])
    for t in (0.01, 0.5, 1.0, 10.0, 1e4):
        assert list(np.argsort(softmax(z, t))) == list(np.argsort(z))
