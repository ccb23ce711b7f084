"""The fused path of :mod:`thermoscope.sampling._fused` for torch tensors, on their device.

Same chains (temperatures, top-k, top-p, min-p), same result as the plain
chain of torch kernels: the kept tokens, their warped values, and draws
through :func:`~thermoscope.sampling._draw.draw_torch` over the kept tokens
in ascending token-id order. Everything is a torch operation on the logits'
device; no value comes back to the host except a few booleans and sizes
(a candidate list's width, whether a rare tie needs the slow route), read
once per call, never per row.

First cut
---------
- top-k: the vocabulary is cut into groups of ``_GROUP`` consecutive tokens;
  the ``k`` groups with the largest maxima hold the ``k`` largest tokens, so
  one reduction over the vocabulary (the group maxima), a ``topk`` over the
  maxima and a gather of those groups' tokens give the candidates. Leading
  temperatures divide the candidates only (and the largest value a token
  outside them can have, the next group's maximum): division by a positive
  temperature is monotone, so when that value stays below the k-th tempered
  candidate no other token can enter the top k. The candidates are ordered by
  token id for the draw. If a tie reaches outside the candidates (rounded or
  masked logits), the whole vocabulary is tempered and cut instead.
- min-p, top-nσ and η: the cut (``max + log(p)``, ``max - n * std``, η's
  logit threshold) is explicit; the tokens at or above it are compacted,
  top-nσ's and η's from the few groups of ``_GROUP`` tokens whose maximum
  reaches it when few do (:func:`_upper_first`).
- top-p: the plain kernel sorts the row and runs a float64 sum from the top.
  Its first ``_TOP_P_HEAD`` values come from the top-k candidates; when the
  sum crosses ``p * Z`` among them (LM-shaped rows) that is the cut
  (:func:`_top_p_head`). Otherwise a strided subsample, sorted, estimates
  where the running mass crosses ``p * Z``; the tokens above a value ``c_lo``
  a little below that estimate are compacted, the band ``[c_lo, c_hi)``
  around it is sorted and the running sum is finished from the mass above
  ``c_hi``. With ``c_hi = inf`` (peaked rows) the running sums are the
  plain kernel's very numbers; otherwise the cut is accepted only when the
  sums clear ``p * Z`` by more than twice the rounding bound of any
  summation order (see :func:`thermoscope.sampling._fused._band_cut`).
  Rows that miss get the plain kernel.

Steps after the first cut run the torch kernels on the candidates. Which
chains qualify is decided once, for both libraries, by
:func:`thermoscope.sampling._fused.plan`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope.sampling import _kernels_torch as K
from thermoscope.sampling._bands_torch import typical_first, typical_raw
from thermoscope.sampling._compact_torch import (
    _GROUP,
    Compact,
    _candidates,
    _order_by_id,
    compact_mask,
)
from thermoscope.sampling._context import Context
from thermoscope.sampling._fused import Plan
from thermoscope.sampling._input import Rows, on_device, rows_param
from thermoscope.sampling._rowdraw import draw_rows
from thermoscope.sampling.entropy_cuts import Eta, eta_floor
from thermoscope.sampling.warpers import MinP, TopK, TopNSigma, TopP, Typical

__all__ = ["Compact", "DenseKeep", "compact_mask", "run"]

_SPARE = 16  # candidates beyond k, so that a tie at the k-th value rarely spills over
_SUBSAMPLE = 2048  # subsample length per row for the top-p band estimate
_BAND_SLACK = 8  # subsample positions either side of the estimate, plus
_BAND_SIGMAS = 2.0  # this many square roots of the positions counted
_REFINE_WIDTH = 1024  # bands wider than this are narrowed by a second subsample
_REFINE_SUBSAMPLE = 512
_REFINE_SLACK = 8
_REFINE_SIGMAS = 2.0
_U = 2.0**-53
_TOP_P_HEAD = 64  # groups taken before a top-p first cut searches a band
_SPARSE_MIN_GROUPS = 64  # shorter rows: a compare over the row costs as little
_SPARSE_SHARE = 8  # a cut reaching more than 1 / _SPARSE_SHARE of the groups: compare all


def _upper_set(z: Any, thr: Any) -> Any:
    """``z >= thr`` per row (float64 ``thr``), finite entries only (one compare)."""
    edge = torch.clamp(K.floor_in(thr, z.dtype), min=torch.finfo(z.dtype).min)
    return z >= edge[:, None]


def _upper_first(z: Any, thr: Any) -> Compact:
    """``compact_mask(z, _upper_set(z, thr))``, reading only the groups that reach ``thr``.

    A token at or above ``thr`` lies in a group of ``_GROUP`` consecutive
    tokens whose maximum reaches it: one reduction over the vocabulary (the
    group maxima) finds those groups, and when they are few (a sparse cut:
    η, top-nσ on LM-shaped rows) only their tokens are gathered and compared,
    instead of a compare and a ``nonzero`` over the whole vocabulary. Groups
    are taken in ascending order, so the kept tokens stay in ascending
    token-id order. One size is read on the host (the most groups in a row).
    """
    rows, vocab = z.shape
    groups = vocab // _GROUP
    if groups < _SPARSE_MIN_GROUPS:
        return compact_mask(z, _upper_set(z, thr))
    edge = torch.clamp(K.floor_in(thr, z.dtype), min=torch.finfo(z.dtype).min)[:, None]
    main = groups * _GROUP
    hit = z[:, :main].reshape(rows, groups, _GROUP).amax(dim=-1) >= edge
    width = int(hit.sum(dim=-1).max()) if rows else 0
    if width * _SPARSE_SHARE > groups:
        return compact_mask(z, _upper_set(z, thr))
    # The hit groups in ascending order, then sentinels (index `groups`).
    order = torch.arange(groups, 0, -1, device=z.device)
    gi = groups - torch.topk(torch.where(hit, order, 0), max(width, 1), dim=-1).values
    ids = (gi[:, :, None] * _GROUP + torch.arange(_GROUP, device=z.device)).reshape(rows, -1)
    real = (gi < groups)[:, :, None].expand(-1, -1, _GROUP).reshape(rows, -1)
    if main < vocab:  # the last few tokens: always read
        tail = torch.arange(main, vocab, device=z.device).expand(rows, vocab - main)
        ids = torch.cat([ids, tail], dim=1)
        real = torch.cat([real, torch.ones_like(tail, dtype=torch.bool)], dim=1)
    ids = torch.where(real, ids, 0)
    vals = z.gather(1, ids)
    sub = compact_mask(vals, real & (vals >= edge))
    token = ids.gather(1, sub.ids.clamp(max=ids.shape[1] - 1))
    return Compact(sub.vals, torch.where(sub.valid, token, vocab), sub.valid, vocab)


def run(chain: Plan, rows: Rows, ctx: Context) -> Compact | DenseKeep:
    """Run a fused plan on validated torch rows; the result holds the kept tokens only."""
    z = rows.z
    steps = chain.steps
    first = steps[chain.first_cut]
    cand = _top_k_first(chain, rows) if isinstance(first, TopK) else None
    if isinstance(first, Typical):
        cand = typical_raw(chain, rows)
    m = rows.row_max[:, None]
    if cand is None:
        # The temperature kernel's division, on the maxima too: a row it shifts
        # (tiny T) is shifted in both, so the tempered maximum stays the maximum.
        for w in steps[: chain.first_cut]:
            z = w.apply(z, rows.batch_shape)
            m = w.apply(m, rows.batch_shape)
        if isinstance(first, TopK):
            cand = _top_k_full(first, z, rows.batch_shape)
        elif isinstance(first, TopP):
            p = rows_param(first.top_p, rows.batch_shape, "top_p")
            cut = _top_p_first(z, p, m, last=chain.first_cut == len(steps) - 1)
            if isinstance(cut, DenseKeep):
                return cut
            cand = cut
        elif isinstance(first, MinP):
            thr = K.min_p_threshold(z, rows_param(first.min_p, rows.batch_shape, "min_p"), m[:, 0])
            cand = compact_mask(z, _upper_set(z, thr))
        elif isinstance(first, TopNSigma):
            n = rows_param(first.top_n_sigma, rows.batch_shape, "top_n_sigma")
            cand = _upper_first(z, K.top_n_sigma_threshold(z, n))
        elif isinstance(first, Typical):
            mass = rows_param(first.typical_p, rows.batch_shape, "typical_p")
            cand = typical_first(z, m, mass, first.min_tokens_to_keep)
        elif isinstance(first, Eta):
            cand = _upper_first(z, eta_floor(first, z, rows.batch_shape, m[:, 0]))
        else:  # plan() admits only the kinds of _fused.FIRST_CUTS
            raise TypeError(f"the fused path cannot start with {first!r}")
    for step in steps[chain.first_cut + 1 :]:
        cand.vals = step.apply_in(cand.vals, ctx)
    cand.valid &= cand.vals > float("-inf")
    return cand


def _k_of(first: TopK, batch_shape: tuple[int, ...], vocab: int) -> np.ndarray:
    k = np.maximum(rows_param(first.top_k, batch_shape, "top_k"), first.min_tokens_to_keep)
    return np.minimum(k, vocab)


def _top_k_full(first: TopK, z: Any, batch_shape: tuple[int, ...]) -> Compact:
    """Top-k over the whole (already tempered) vocabulary, compacted."""
    thr = K.kth_largest(z, _k_of(first, batch_shape, z.shape[1]))
    return compact_mask(z, _upper_set(z, thr))


def _top_k_first(chain: Plan, rows: Rows) -> Compact | None:
    """Top-k on the raw logits' candidates, then the leading temperatures on those only.

    Returns None when a tie reaches outside the candidates (the caller then
    tempers the whole vocabulary); one boolean is read to decide.
    """
    first = chain.steps[chain.first_cut]
    assert isinstance(first, TopK)
    z = rows.z
    vocab = z.shape[1]
    k = _k_of(first, rows.batch_shape, vocab)
    kmax = int(k.max())
    ids, vals, edge = _candidates(z, min(kmax + _SPARE, vocab))
    # The edge rides along as one more column, so a row the temperature kernel
    # shifts (tiny T) is shifted alike in both.
    both = torch.cat([vals, edge[:, None]], dim=1)
    for w in chain.steps[: chain.first_cut]:
        both = w.apply(both, rows.batch_shape)
    vals, edge = both[:, :-1], both[:, -1]
    width = min(kmax + _SPARE, vals.shape[1])
    top, at = torch.topk(vals, width, dim=-1)  # largest first
    if bool(np.all(k == k[0])):
        kth = top[:, int(k[0]) - 1]
    else:
        kth = top.gather(1, on_device(k - 1, z)[:, None])[:, 0]
    keep = top >= kth[:, None]
    # Exact when nothing outside the candidates reaches the k-th value, and
    # every candidate tied with it is among the `width` kept here.
    outside_ok = (edge < kth) | torch.isneginf(edge)
    inside_ok = (top[:, -1] < kth) if width < vals.shape[1] else torch.ones_like(outside_ok)
    if not bool((outside_ok & inside_ok).all()):
        return None
    return _order_by_id(top, ids.gather(1, at), keep, vocab)


class DenseKeep:
    """A top-p cut that ends the chain, kept dense: the tempered row, its weights, a mask.

    A wide nucleus (flat rows: tens of thousands of tokens) is not compacted;
    the draw runs over the whole row with the removed tokens' weights set to
    0, which draws the same token as over the compacted list.
    """

    __slots__ = ("keep", "w", "z")

    def __init__(self, z: Any, w: Any, keep: Any):
        self.z = z
        self.w = w
        self.keep = keep

    def weights(self) -> Any:
        """``exp(z - max)`` where kept, 0 elsewhere: the plain chain's weights."""
        return self.w * self.keep.to(self.w.dtype)

    def masked_vals(self) -> Any:
        """The warped logits (``-inf`` where removed)."""
        return torch.where(self.keep, self.z, float("-inf"))

    def dense_logits(self) -> Any:
        return self.masked_vals()

    def dense_probs(self) -> Any:
        w = self.weights()
        return w / w.sum(dim=-1, keepdim=True)

    def token_ids(self, pos: Any) -> Any:
        return pos

    def positions(self, u: Any, bits: int) -> Any:
        return draw_rows(self.w, u, bits, self.keep)  # the weights, never copied


def _band_edges(
    values: Any, m: Any, mass_below: Any, subsample: int, slack: int, sigmas: float
) -> tuple[Any, Any]:
    """Values ``c_lo <= c_hi`` around where the mass below crosses ``mass_below`` (estimated).

    A strided subsample of each row, sorted, estimates the mass below each of
    its values (``stride`` times the running sum from the bottom: many small
    weights, a steady estimate); ``c_hi`` / ``c_lo`` sit ``slack`` plus
    ``sigmas`` square roots of the positions counted either side of the
    estimate (``inf`` / ``-inf`` past the ends).
    """
    rows = values.shape[0]
    stride = max(1, values.shape[1] // subsample)
    asc = torch.sort(values[:, ::stride], dim=-1).values
    width = asc.shape[1]
    below = torch.cumsum(torch.exp(asc - m), dim=-1, dtype=torch.float64) * stride
    under = (below < mass_below[:, None]).sum(dim=-1)
    at = width - under  # subsample values estimated above the cut
    spread = (slack + sigmas * torch.sqrt(torch.minimum(at, under).to(torch.float64))).long()
    desc = asc.flip(-1)
    hi_i, lo_i = at - spread, at + spread
    inf = torch.full((rows,), float("inf"), dtype=values.dtype, device=values.device)
    c_hi = torch.where(hi_i >= 0, desc.gather(1, hi_i.clamp(min=0)[:, None])[:, 0], inf)
    c_lo = torch.where(lo_i < width, desc.gather(1, lo_i.clamp(max=width - 1)[:, None])[:, 0], -inf)
    return c_lo, c_hi


def _cut_in_band(
    band: Any, above: Any, bounded: Any, m: Any, target: Any, total: Any, n: int
) -> tuple[Any, Any]:
    """Sort ``band``, run the float64 sums from ``above``, check the crossing.

    As :func:`thermoscope.sampling._fused._cut_in_band`: the cut value per row,
    and whether it is provably the plain kernel's (exact when not ``bounded``,
    by a margin of ``8 n 2**-53 Z`` otherwise).
    """
    desc = torch.sort(band, dim=-1, descending=True).values  # -inf padding last
    running = torch.cumsum(
        torch.cat([above[:, None], torch.exp(desc - m).to(torch.float64)], dim=1), dim=1
    )
    width = desc.shape[1]
    j = 1 + (running[:, 1:] < target[:, None]).sum(dim=-1)  # 1-based position in the band
    jj = j.clamp(max=width)
    hit = running.gather(1, jj[:, None])[:, 0]
    before = running.gather(1, (jj - 1)[:, None])[:, 0]
    delta = 8.0 * n * _U * total
    clear = (hit >= target + delta) & (before < target - delta)
    ok = (j <= width) & torch.where(bounded, clear, True)
    return desc.gather(1, (jj - 1)[:, None])[:, 0].to(torch.float64), ok


def _band_cut(
    band: Any, above: Any, bounded: Any, m: Any, target: Any, total: Any, n: int
) -> tuple[Any, Any]:
    """:func:`_cut_in_band`, narrowing a wide band first with a second subsample.

    The mass of the band above the inner band's top is added to ``above``
    (another summation order, so those rows become ``bounded``); rows whose
    inner band misses the crossing are redone on the whole band.
    """
    if band.shape[1] <= _REFINE_WIDTH:
        return _cut_in_band(band, above, bounded, m, target, total, n)
    bw = torch.exp(band - m)
    need = above + K.sum64(bw) - target  # band mass below the cut
    c_lo, c_hi = _band_edges(band, m, need, _REFINE_SUBSAMPLE, _REFINE_SLACK, _REFINE_SIGMAS)
    ge_hi = band >= c_hi[:, None]
    above2 = above + K.sum64(bw, ge_hi)
    inner = compact_mask(band, ~ge_hi & (band >= c_lo[:, None]) & (band > float("-inf"))).vals
    bounded2 = bounded | (c_hi < float("inf"))
    cut, ok = _cut_in_band(inner, above2, bounded2, m, target, total, n)
    if not bool(ok.all()):
        bad = torch.nonzero(~ok)[:, 0]
        redo, redo_ok = _cut_in_band(
            band[bad], above[bad], bounded[bad], m[bad], target[bad], total[bad], n
        )
        cut, ok = cut.index_put((bad,), redo), ok.index_put((bad,), redo_ok)
    return cut, ok


def _top_p_head(z: Any, pp: Any, m: Any, target: Any) -> Compact | None:
    """The top-p cut from the top of each row only, when that suffices on every row; else None.

    The plain kernel sorts the row and runs a float64 sum of the weights from
    the top. The tokens of the ``_TOP_P_HEAD`` groups with the largest maxima
    (:func:`_candidates`) hold every token above the largest value left
    outside; the ``_TOP_P_HEAD`` largest of them (a ``topk``, sorted) hold every
    token above ``edge``, the larger of that value and the next candidate's.
    They are the top of the plain kernel's sorted row
    and their running sums its very numbers (CPU ``cumsum`` runs left to
    right). A row whose sum reaches ``target`` there, at a value above
    ``edge``, has the plain kernel's cut and every kept token among them.
    One boolean is read on the host.
    """
    ids, vals, edge = _candidates(z, _TOP_P_HEAD)
    # The largest _TOP_P_HEAD of them, sorted; the next one joins the edge.
    top, at = torch.topk(vals, min(_TOP_P_HEAD + 1, vals.shape[1]), dim=-1)
    if top.shape[1] > _TOP_P_HEAD:
        edge = torch.maximum(edge, top[:, _TOP_P_HEAD])
        top, at = top[:, :_TOP_P_HEAD], at[:, :_TOP_P_HEAD]
    desc = top
    mass = torch.cumsum(torch.exp(desc - m), dim=-1, dtype=torch.float64)
    n_keep = 1 + (mass[:, :-1] < target[:, None]).sum(dim=-1)
    thr = desc.gather(1, (n_keep - 1)[:, None])[:, 0]
    ok = (mass[:, -1] >= target) & (thr > edge) & (pp < 1.0)
    if not bool(ok.all()):
        return None
    return _order_by_id(desc, ids.gather(1, at), desc >= thr[:, None], z.shape[1])


def _top_p_first(z: Any, p: np.ndarray, m: Any, last: bool) -> Compact | DenseKeep:
    """Top-p as the first cut (see the module notes); ``last``: no step follows.

    Peaked rows (a nucleus inside the top of the subsample) are exact from
    their sorted band alone, and the band holds every kept token: they come
    back compacted. Otherwise the mass above the band is a masked sum over
    the row, and the kept tokens are a mask over the row, compacted unless
    the cut ends the chain (then drawn densely: :class:`DenseKeep`).
    """
    _rows, vocab = z.shape
    pp = on_device(p, z)
    w = z - m
    w.exp_()  # the plain kernel's weights, without a second (B, V) buffer
    total = K.sum64(w)  # the plain kernel's row mass
    target = pp * total
    if vocab // _GROUP >= 4 * _TOP_P_HEAD:
        head = _top_p_head(z, pp, m, target)
        if head is not None:
            return head
    whole = pp >= 1.0  # keep every finite token
    c_lo, c_hi = _band_edges(z, m, total - target, _SUBSAMPLE, _BAND_SLACK, _BAND_SIGMAS)
    c_hi = torch.where(whole, float("inf"), c_hi)
    c_lo = torch.where(whole, float("-inf"), c_lo)
    bounded = c_hi < float("inf")
    ge_hi = z >= c_hi[:, None]
    # Exactly 0 on rows without an upper edge: every product is w * 0.
    above = K.sum64(w, ge_hi)
    band = compact_mask(z, _upper_set(z, c_lo.to(torch.float64)) & ~ge_hi)
    cut, ok = _band_cut(band.vals, above, bounded, m, target, total, vocab)
    cut = torch.where(whole, float("-inf"), cut)
    bad_any, bounded_any = torch.stack([(~ok & ~whole).any(), bounded.any()]).tolist()
    if bad_any:
        # Rows whose band missed the crossing (or sat on a rounding tie): the
        # plain kernel decides them.
        bad = torch.nonzero(~ok & ~whole)[:, 0]
        exact = K.top_p_threshold(z[bad], pp[bad], total[bad])
        cut = cut.index_put((bad,), exact)
        bounded_any = True
    if not bounded_any:
        # Every row's kept tokens lie in its band: the band is the candidate list.
        keep = band.valid & (band.vals >= K.floor_in(cut, z.dtype)[:, None])
        return Compact(torch.where(keep, band.vals, float("-inf")), band.ids, keep, vocab)
    keep_all = _upper_set(z, cut)
    if last:
        return DenseKeep(z, w, keep_all)
    return compact_mask(z, keep_all)
