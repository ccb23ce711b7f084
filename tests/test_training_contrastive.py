"""Contrastive losses: parity with F.cross_entropy and transformers, hand values, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from thermoscope.training import (  # noqa: E402
    LearnableTemperature,
    _nt_xent,
    clip_loss,
    info_nce_loss,
    nt_xent_loss,
)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _plain_nt_xent(z1, z2, t, exclude=None, reduction="mean"):
    """The textbook formulation: the (2N, 2N) matrix, diagonal masked, F.cross_entropy."""
    n = z1.shape[0]
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])
    sim = z @ z.T / t
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    if exclude is not None:
        sim = sim.masked_fill(exclude, float("-inf"))
    labels = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(sim, labels, reduction=reduction)


def _exclude_by_loop(mask):
    """The (2N, 2N) exclusion of a duplicates mask, written out entry by entry."""
    n = mask.shape[0]
    out = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    for a in range(2 * n):
        for b in range(2 * n):
            i, j = a % n, b % n
            out[a, b] = bool(mask[i, j]) and i != j
    return out


# -- InfoNCE ------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_info_nce_matches_cross_entropy_on_cosine_logits(reduction):
    q, k = _randn(5, 4, seed=1), _randn(7, 4, seed=2)
    pos = torch.tensor([3, 0, 6, 6, 1])
    got = info_nce_loss(q, k, temperature=0.3, positive=pos, reduction=reduction)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.3
    want = F.cross_entropy(logits, pos, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_info_nce_default_positive_is_the_diagonal_and_per_query_temperature():
    q, k = _randn(4, 3, seed=3), _randn(6, 3, seed=4)
    t = torch.tensor([0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    got = info_nce_loss(q, k, temperature=t, reduction="none")
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / t[:, None]
    torch.testing.assert_close(got, F.cross_entropy(logits, torch.arange(4), reduction="none"))


def test_info_nce_by_hand_two_queries_three_keys():
    # q0 = (1, 0), q1 = (0, 2) -> (0, 1); keys (1, 0), (0, 1), (-1, 0); T = 0.5.
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    # cosines: q0 -> (1, 0, -1), q1 -> (0, 1, 0); positives 0 and 1.
    l0 = -2.0 + math.log(math.exp(2.0) + 1.0 + math.exp(-2.0))
    l1 = -2.0 + math.log(1.0 + math.exp(2.0) + 1.0)
    got = info_nce_loss(q, k, temperature=0.5, reduction="none")
    np.testing.assert_allclose(got.tolist(), [l0, l1], rtol=1e-14)


def test_info_nce_gradcheck_inputs_and_temperature():
    q = _randn(3, 4, seed=5).requires_grad_()
    k = _randn(5, 4, seed=6).requires_grad_()
    t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([4, 0, 2])
    assert torch.autograd.gradcheck(
        lambda a, b, c: info_nce_loss(a, b, temperature=c, positive=pos), (q, k, t)
    )


# -- NT-Xent ------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("block", [None, 16, 7])
def test_nt_xent_matches_plain_torch(reduction, block, monkeypatch):
    if block is not None:  # several row blocks, including a ragged last one
        monkeypatch.setattr(_nt_xent, "_BLOCK", block * 12)
    z1, z2 = _randn(6, 5, seed=7), _randn(6, 5, seed=8)
    got = nt_xent_loss(z1, z2, temperature=0.2, reduction=reduction)
    want = _plain_nt_xent(z1, z2, 0.2, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_nt_xent_by_hand_two_items():
    # z1 = (1, 0), (0, 1); z2 = (1, 1), (0, -3); T = 1. Unit rows: u0 = (1, 0),
    # u1 = (0, 1), u2 = (1, 1)/sqrt2, u3 = (0, -1).
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    z2 = torch.tensor([[1.0, 1.0], [0.0, -3.0]], dtype=torch.float64)
    r = 1 / math.sqrt(2)
    cos = [
        [1, 0, r, 0],
        [0, 1, r, -1],
        [r, r, 1, -r],
        [0, -1, -r, 1],
    ]
    pos = [2, 3, 0, 1]
    want = []
    for a in range(4):
        others = [math.exp(cos[a][b]) for b in range(4) if b != a]
        want.append(-cos[a][pos[a]] + math.log(sum(others)))
    got = nt_xent_loss(z1, z2, temperature=1.0, reduction="none")
    np.testing.assert_allclose(got.tolist(), want, rtol=1e-14)
    np.testing.assert_allclose(float(nt_xent_loss(z1, z2, temperature=1.0)), np.mean(want))


def test_nt_xent_mask_matches_plain_torch_with_the_entries_excluded():
    z1, z2 = _randn(5, 3, seed=9), _randn(5, 3, seed=10)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[0, 3] = mask[3, 0] = mask[2, 4] = True  # 2 -> 4 only: one direction
    mask[1, 1] = True  # the diagonal is ignored
    got = nt_xent_loss(z1, z2, temperature=0.4, mask=mask, reduction="none")
    want = _plain_nt_xent(z1, z2, 0.4, exclude=_exclude_by_loop(mask), reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_nt_xent_mask_changes_exactly_the_anchors_of_its_rows():
    z1, z2 = _randn(4, 3, seed=11), _randn(4, 3, seed=12)
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 2] = True
    plain = nt_xent_loss(z1, z2, temperature=0.5, reduction="none")
    masked = nt_xent_loss(z1, z2, temperature=0.5, mask=mask, reduction="none")
    changed = (plain != masked).tolist()
    assert changed == [False, True, False, False, False, True, False, False]
    # Removing two positive terms from the denominator lowers the loss.
    assert bool((masked[[1, 5]] < plain[[1, 5]]).all())


def test_nt_xent_duplicates_only_as_negatives_give_zero_loss():
    # Both items are the same point in both views: the mask leaves only the positive.
    z = torch.tensor([[1.0, 2.0], [1.0, 2.0]], dtype=torch.float64)
    mask = torch.ones(2, 2, dtype=torch.bool)
    assert nt_xent_loss(z, z, temperature=0.1, mask=mask, reduction="none").tolist() == [0.0] * 4


@pytest.mark.parametrize("per_row", [False, True])
def test_nt_xent_gradcheck_inputs_and_temperature(per_row, monkeypatch):
    monkeypatch.setattr(_nt_xent, "_BLOCK", 24)  # rows in blocks of 3: 8 anchors, 3 blocks
    z1 = _randn(4, 3, seed=13).requires_grad_()
    z2 = _randn(4, 3, seed=14).requires_grad_()
    shape = (4,) if per_row else ()
    t = (0.3 + torch.rand(shape, dtype=torch.float64)).requires_grad_()
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 2] = True

    def f(a, b, c):
        return nt_xent_loss(a, b, temperature=c, mask=mask, reduction="none")

    assert torch.autograd.gradcheck(f, (z1, z2, t))


def test_nt_xent_per_item_temperature_matches_plain_torch():
    z1, z2 = _randn(3, 4, seed=15), _randn(3, 4, seed=16)
    t = torch.tensor([0.2, 0.5, 1.5], dtype=torch.float64)
    got = nt_xent_loss(z1, z2, temperature=t, reduction="none")
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])
    sim = z @ z.T / torch.cat([t, t])[:, None]
    sim = sim.masked_fill(torch.eye(6, dtype=torch.bool), float("-inf"))
    want = F.cross_entropy(sim, torch.tensor([3, 4, 5, 0, 1, 2]), reduction="none")
    torch.testing.assert_close(got, want)


def test_nt_xent_backward_twice_with_retained_graph():
    z1 = _randn(3, 2, seed=17).requires_grad_()
    loss = nt_xent_loss(z1, _randn(3, 2, seed=18), temperature=0.5)
    (g1,) = torch.autograd.grad(loss, z1, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, z1)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


@given(
    scales=st.lists(st.floats(0.01, 100.0), min_size=8, max_size=8),
    t=st.floats(0.02, 5.0),
)
def test_nt_xent_is_invariant_to_row_scaling_and_nonnegative(scales, t):
    z1, z2 = _randn(4, 3, seed=19), _randn(4, 3, seed=20)
    s = torch.tensor(scales, dtype=torch.float64)[:, None]
    base = nt_xent_loss(z1, z2, temperature=t, reduction="none")
    scaled = nt_xent_loss(z1 * s[:4], z2 * s[4:], temperature=t, reduction="none")
    torch.testing.assert_close(base, scaled, rtol=1e-9, atol=1e-9)
    # Each anchor's loss is -log of a probability: >= 0.
    assert bool((base >= 0).all())


# -- CLIP ---------------------------------------------------------------------


def test_clip_loss_matches_transformers_image_text_contrastive_loss():
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss as hf_clip_loss

    img, txt = _randn(6, 8, seed=21), _randn(6, 8, seed=22)
    scale = 1 / 0.07
    logits_per_text = scale * F.normalize(txt, dim=1) @ F.normalize(img, dim=1).T
    want = hf_clip_loss(logits_per_text)
    torch.testing.assert_close(clip_loss(img, txt, logit_scale=scale), want)
    torch.testing.assert_close(clip_loss(img, txt, temperature=0.07), want)


def test_clip_loss_by_hand_two_pairs():
    # Unit features; cosines [[1, c], [c', 1]] with img0.txt1 = 0.6, img1.txt0 = 0.
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    txt = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    # cos(img_i, txt_j): [[1, 0.6], [0, 0.8]]; T = 1.
    rows = [
        -1 + math.log(math.e + math.exp(0.6)),
        -0.8 + math.log(1 + math.exp(0.8)),
    ]
    cols = [
        -1 + math.log(math.e + 1),
        -0.8 + math.log(math.exp(0.6) + math.exp(0.8)),
    ]
    want = (np.mean(rows) + np.mean(cols)) / 2
    assert math.isclose(float(clip_loss(img, txt, temperature=1.0)), want, rel_tol=1e-14)


def test_clip_loss_gradcheck_features_and_scale():
    img = _randn(4, 3, seed=23).requires_grad_()
    txt = _randn(4, 3, seed=24).requires_grad_()
    scale = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, s: clip_loss(a, b, logit_scale=s), (img, txt, scale)
    )


# -- LearnableTemperature as the temperature of every loss -------------------------


def test_learnable_temperature_is_accepted_and_gets_gradients():
    lt = LearnableTemperature.clip().double()
    a, b = _randn(4, 3, seed=25), _randn(4, 3, seed=26)
    for loss in (
        info_nce_loss(a, b, temperature=lt),
        nt_xent_loss(a, b, temperature=lt),
        clip_loss(a, b, logit_scale=lt),
        clip_loss(a, b, temperature=lt),
    ):
        lt.zero_grad()
        loss.backward()
        assert lt.raw.grad is not None
        assert bool(lt.raw.grad != 0)
    with torch.no_grad():
        want = _plain_nt_xent(a, b, lt.temperature)
    torch.testing.assert_close(nt_xent_loss(a, b, temperature=lt), want)


# -- dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype(dtype):
    a, b = _randn(6, 4, seed=27, dtype=dtype), _randn(6, 4, seed=28, dtype=dtype)
    for fn, kw in (
        (info_nce_loss, {"temperature": 0.1}),
        (nt_xent_loss, {"temperature": 0.1}),
        (clip_loss, {"temperature": 0.1}),
    ):
        got = fn(a, b, **kw)
        assert got.dtype == dtype
        want = fn(a.double(), b.double(), **kw)
        assert math.isclose(float(got), float(want), rel_tol=1e-2)


# -- errors -------------------------------------------------------------------------

X = torch.ones(3, 2)


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (
            lambda: info_nce_loss(X, X, temperature=0.0),
            ValueError,
            "`temperature` must be finite and > 0, got 0.0",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=-1),
            ValueError,
            "`temperature` must be finite and > 0",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=float("nan")),
            ValueError,
            "`temperature` must be finite and > 0, got nan",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=torch.tensor(float("nan"))),
            ValueError,
            "`temperature` must be finite and > 0, got nan",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=torch.tensor(float("inf"))),
            ValueError,
            "`temperature` must be finite and > 0, got inf",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=torch.tensor([0.5, 0.0, 1.0])),
            ValueError,
            "`temperature` must be finite and > 0, got 0.0",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=torch.ones(2)),
            ValueError,
            "`temperature` must be a scalar or have one value per row",
        ),
        (
            lambda: info_nce_loss(X, X, temperature="0.5"),
            TypeError,
            "`temperature` must be a number > 0",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=True),
            TypeError,
            "`temperature` must be a number > 0",
        ),
        (
            lambda: clip_loss(X, X, temperature=torch.ones(3)),
            ValueError,
            "`temperature` must be a single number",
        ),
        (
            lambda: clip_loss(X, X, logit_scale=0.0),
            ValueError,
            "`logit_scale` must be finite and > 0",
        ),
        (
            lambda: clip_loss(X, X),
            ValueError,
            "`logit_scale` or `temperature` must be given (one of them), got neither",
        ),
        (lambda: clip_loss(X, X, logit_scale=1.0, temperature=1.0), ValueError, "got both"),
        (
            lambda: clip_loss(X, torch.ones(4, 2), temperature=1.0),
            ValueError,
            "`text_features` must have the shape of `image_features`",
        ),
        (
            lambda: nt_xent_loss(X, torch.ones(3, 4), temperature=1.0),
            ValueError,
            "`z2` must have the shape of `z1`",
        ),
        (
            lambda: nt_xent_loss(torch.ones(1, 2), torch.ones(1, 2), temperature=1.0),
            ValueError,
            "`z1` must have at least 2 rows",
        ),
        (
            lambda: nt_xent_loss(torch.ones(3), torch.ones(3), temperature=1.0),
            ValueError,
            "`z1` must be 2-D",
        ),
        (
            lambda: info_nce_loss(torch.ones(2, 2, 2), X, temperature=1.0),
            ValueError,
            "`query` must be 2-D",
        ),
        (
            lambda: info_nce_loss(X, torch.ones(3, 5), temperature=1.0),
            ValueError,
            "`keys` must have the feature dimension of `query`",
        ),
        (
            lambda: info_nce_loss(X, torch.ones(2, 2), temperature=1.0),
            ValueError,
            "`keys` must have at least as many rows as `query`",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=1.0, positive=[0, 1, 3]),
            ValueError,
            "`positive` must be class indices in [0, 2], got 3",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=1.0, positive=[0, -1, 2]),
            ValueError,
            "`positive` must be class indices",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=1.0, positive=[0, 1]),
            ValueError,
            "`positive` must have shape (3,)",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=1.0, positive=[0.5, 1, 2]),
            TypeError,
            "`positive` must be integer class indices",
        ),
        (
            lambda: info_nce_loss(X, X, temperature=1.0, reduction="avg"),
            ValueError,
            "`reduction` must be 'mean', 'sum' or 'none', got 'avg'",
        ),
        (
            lambda: info_nce_loss(np.ones((3, 2)), X, temperature=1.0),
            TypeError,
            "`query` must be a torch tensor, got ndarray",
        ),
        (
            lambda: nt_xent_loss(torch.full((3, 2), float("nan")), X, temperature=1.0),
            ValueError,
            "`z1` must be finite, got nan",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=1.0, mask=torch.zeros(3, 2, dtype=torch.bool)),
            ValueError,
            "`mask` must have shape (3, 3), got shape (3, 2)",
        ),
        (
            lambda: nt_xent_loss(X, X, temperature=1.0, mask=torch.zeros(3, 3)),
            TypeError,
            "`mask` must be a boolean array",
        ),
        (
            lambda: nt_xent_loss(torch.ones(0, 2), torch.ones(0, 2), temperature=1.0),
            ValueError,
            "`z1` must not be empty",
        ),
        (
            lambda: clip_loss(torch.ones(3, 2, dtype=torch.complex64), X, temperature=1.0),
            TypeError,
            "`image_features` must be a real numeric tensor",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_losses_run_on_the_inputs_device_and_match_the_cpu():
    a, b = _randn(64, 16, seed=29), _randn(64, 16, seed=30)
    lt = LearnableTemperature(0.2).double()
    for fn, kw in (
        (info_nce_loss, {}),
        (nt_xent_loss, {"mask": torch.eye(64, dtype=torch.bool).roll(1, 0)}),
        (clip_loss, {}),
    ):
        want = fn(a, b, temperature=lt, **kw)
        got = fn(a.cuda(), b.cuda(), temperature=lt.cuda(), **kw)
        lt.cpu()
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), want)
