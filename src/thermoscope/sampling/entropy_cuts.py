"""Truncations whose cut comes from the distribution's own shape: η, top-H and p-less.

Each stage computes one cut per row from a statistic of the whole row
(its Shannon entropy, a running entropy, its collision probability) and keeps
the tokens on the right side of it; ``-inf`` tokens stay removed and the input
is never modified. The statistics are float64 row sums, in numpy for numpy rows
and with torch operations on the logits' device for tensors (no host copy).

Tie policy
----------
As for every truncation in :mod:`thermoscope.sampling.warpers`, tokens with
equal logits share one decision: η and p-less compare each token's own
probability with the cut, and top-H keeps every token tied with the last one
it admits (transformers keeps whichever tied tokens its ``topk`` lists first).

Examples
--------
>>> import numpy as np
>>> z = np.log(np.array([0.7, 0.2, 0.06, 0.04]))
>>> np.isfinite(PLess()(z))
array([ True, False, False, False])
>>> np.isfinite(TopH(0.8)(z))
array([ True,  True, False, False])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import Array
from thermoscope._validation import check_fraction
from thermoscope.sampling._input import on_device, rows_param
from thermoscope.sampling.warpers import Warper, _freeze, _kernels_for, _min_keep

__all__ = ["Eta", "PLess", "TopH", "eta_floor"]

#: transformers' ``TopHLogitsWarper.top_n``: the entropy is taken over the 100 most likely tokens.
TOP_H_CANDIDATES = 100

#: The two p-less rules of Tan, Wu and Howard (2025).
P_LESS_VARIANTS = ("p-less", "p-less-norm")


# -- η-sampling ------------------------------------------------------------------


_ETA_CHUNK = 1 << 16  # elements per cache-sized slice of rows (numpy)
_ETA_COLUMNS = 8192  # columns per slice of a torch row on CPU


def _eta_threshold(z: Any, eps: Array, m: Any = None, divisors: tuple[Any, ...] = ()) -> Any:
    """The smallest logit η keeps in each row, float64, of ``z``'s kind.

    ``p_i >= eta`` is ``d_i >= log(eta) + log(S)`` with ``d = z - max`` and
    ``S = sum(exp(d))``, and the entropy is ``H = log(S) - sum(exp(d) d) / S``:
    one exp over the row and two float64-accumulated sums give the cut as a
    logit threshold, with no log-softmax of the whole row.

    ``m``: the row maxima of the rows cut (B,), when known. ``divisors``
    (numpy only): per-row temperatures (B, 1) in ``z``'s dtype, applied in
    turn to ``z`` first (the temperature kernel's ``z / T``); the cut is that
    of the tempered rows, which are never written out whole. A cache-sized
    slice of rows (numpy) or of columns (torch on CPU) is worked at a time,
    each element getting the same operations, so the numbers do not depend
    on the slicing: the plain chain and the fused path get the same cut.
    """
    if is_torch(z):
        return _eta_threshold_torch(z, eps, m)
    rows, vocab = z.shape
    if m is None:
        m = z.max(axis=-1)
    step = max(1, _ETA_CHUNK // max(vocab, 1))
    d_buf = np.empty((min(step, rows), vocab), dtype=z.dtype)
    w_buf = np.empty_like(d_buf)
    total = np.empty(rows)
    moment = np.empty(rows)
    low = np.finfo(z.dtype).min
    mm = np.asarray(m, dtype=z.dtype).reshape(rows, 1)
    for r0 in range(0, rows, step):
        k = min(step, rows - r0)
        part = slice(r0, r0 + k)
        d, w = d_buf[:k], w_buf[:k]
        src = z[part]
        for t in divisors:
            np.divide(src, t[part], out=d)
            src = d
        np.subtract(src, mm[part], out=d)
        np.exp(d, out=w)
        np.sum(w, axis=-1, dtype=np.float64, out=total[part])
        with np.errstate(invalid="ignore"):  # 0 * -inf: such rows are redone below
            np.multiply(w, d, out=w)
        np.sum(w, axis=-1, dtype=np.float64, out=moment[part])
        nan = np.flatnonzero(np.isnan(moment[part]))
        if nan.size:
            # A -inf logit has weight 0 but 0 * -inf is nan: with d clamped, its term is 0.
            dn = d[nan]
            terms = np.exp(dn) * np.maximum(dn, low)
            moment[r0 + nan] = np.sum(terms, axis=-1, dtype=np.float64)
    ent = np.log(total) - moment / total
    eta = np.minimum(eps, np.sqrt(eps) * np.exp(-ent))
    thr: Array = mm[:, 0].astype(np.float64) + np.log(eta) + np.log(total)
    return thr


def _eta_threshold_torch(z: Any, eps: Array, m: Any) -> Any:
    """:func:`_eta_threshold` with torch operations on ``z``'s device.

    On CPU a slice of ``_ETA_COLUMNS`` columns is shifted, exponentiated and
    summed while in cache (no (B, V) temporaries); the slices do not depend
    on the number of rows, so neither does a row's cut. Other devices work
    the whole row at once.
    """
    import torch

    if m is None:
        m = z.amax(dim=-1)
    col = m[:, None]
    low = torch.finfo(z.dtype).min
    cols = z.shape[-1] if z.device.type != "cpu" else _ETA_COLUMNS
    total = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
    moment = torch.zeros_like(total)
    for c0 in range(0, z.shape[-1], cols):
        d = z[:, c0 : c0 + cols] - col
        w = torch.exp(d)
        total += w.sum(dim=-1, dtype=torch.float64)
        # -inf logits have weight 0: clamped, their term is 0, not 0 * -inf.
        moment += d.clamp_(min=low).mul_(w).sum(dim=-1, dtype=torch.float64)
    ent = torch.log(total) - moment / total
    e = on_device(eps, z)
    eta = torch.minimum(e, torch.sqrt(e) * torch.exp(-ent))
    return m.to(torch.float64) + torch.log(eta) + torch.log(total)


def eta_floor(
    stage: Eta,
    z: Any,
    batch_shape: tuple[int, ...],
    m: Any = None,
    divisors: tuple[Any, ...] = (),
) -> Any:
    """The smallest logit ``stage`` keeps per row, ``min_tokens_to_keep`` included (float64).

    The plain chain (:meth:`Eta.apply`) and the fused path's first cut both
    keep ``z >= eta_floor(...)``, so they keep the same tokens. ``m``: the
    row maxima of the (tempered) rows, (B,), when known; ``divisors``: see
    :func:`_eta_threshold` (only with ``min_tokens_to_keep == 1``).
    """
    if m is None:
        m = z.amax(dim=-1) if is_torch(z) else z.max(axis=-1)
    thr = _eta_threshold(z, rows_param(stage.epsilon, batch_shape, "epsilon"), m, divisors)
    if stage.min_tokens_to_keep == 1:
        # The top token always stays: the cut is at most the row maximum.
        top = m.to(thr.dtype) if is_torch(m) else np.asarray(m, dtype=np.float64)
        return _minimum(thr, top)
    if divisors:
        raise ValueError("`divisors` need min_tokens_to_keep == 1")
    return _kernels_for(z).floor_threshold(z, thr, stage.min_tokens_to_keep)


def _minimum(a: Any, b: Any) -> Any:
    if is_torch(a):
        import torch

        return torch.minimum(a, b.reshape(a.shape))
    out: Array = np.minimum(a, np.reshape(b, a.shape))
    return out


@dataclass(frozen=True, eq=False)
class Eta(Warper):
    """η-sampling (Hewitt et al., 2022): an ε cut lowered on high-entropy rows.

    Each row keeps the tokens with probability ``p >= eta`` where
    ``eta = min(epsilon, sqrt(epsilon) * exp(-H))`` and ``H`` is the row's
    Shannon entropy (nats): a flat row (large ``H``) gets a lower cut than
    ``epsilon``, a peaked one exactly ``epsilon``.

    Parameters
    ----------
    epsilon : float or array_like
        In (0, 1), one value or one per row. The paper suggests 3e-4 to 4e-3
        (larger models: smaller values); 0.1 already cuts hard.
    min_tokens_to_keep : int, default 1
        The ``min_tokens_to_keep`` most likely tokens (and their ties) are
        kept whatever their probability, as in transformers.

    Notes
    -----
    Matches transformers' ``EtaLogitsWarper`` (5.x): the cut is
    ``sqrt(epsilon) * exp(-H)`` (the code and the paper; transformers'
    docstring writes ``sqrt(epsilon * exp(-H))``), a token is removed when
    ``p < eta`` and it is not among the ``min_tokens_to_keep`` largest logits.
    Probabilities and entropy are float64 here, float32 in transformers.
    In transformers' order eta comes after epsilon (the last truncation);
    llama.cpp has no η, and its order puts it with epsilon.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.5, 0.3, 0.19, 0.01]))
    >>> np.isfinite(Eta(0.02)(z))
    array([ True,  True,  True, False])
    >>> np.isfinite(Eta(0.9)(z)), np.isfinite(Eta(0.9, min_tokens_to_keep=2)(z))
    (array([ True, False, False, False]), array([ True,  True, False, False]))
    """

    epsilon: float | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "eta"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        eps = _freeze(check_fraction(self.epsilon, "epsilon", high_open=True))
        object.__setattr__(self, "epsilon", eps)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return _kernels_for(z).apply_threshold(z, eta_floor(self, z, batch_shape))


# -- Top-H -----------------------------------------------------------------------


def _top_h_threshold(z: Any, top_h: Array) -> Any:
    """The smallest logit top-H keeps in each row, float64, of ``z``'s kind.

    Over the ``n = min(100, V)`` largest logits, sorted descending: with
    ``q`` their renormalised distribution, the entropy terms ``-q log q`` are
    summed from the top, and the longest prefix whose running sum stays
    ``<= top_h * H(q)`` is kept (at least one token). ``H(q)`` is taken as the
    running sum's last value, so ``top_h = 1`` keeps all ``n`` exactly.
    """
    n = min(TOP_H_CANDIDATES, z.shape[-1])
    if is_torch(z):
        return _top_h_threshold_torch(z, top_h, n)
    cols = z.shape[-1]
    top = z if n == cols else np.partition(z, cols - n, axis=-1)[:, cols - n :]
    d64 = np.sort(top, axis=-1)[:, ::-1].astype(np.float64)
    shifted = d64 - d64[:, :1]
    weights = np.exp(shifted)
    log_total = np.log(weights.sum(axis=-1, keepdims=True))
    finite = np.isfinite(shifted)
    logq = np.where(finite, shifted - log_total, 0.0)
    terms = np.where(finite, -np.exp(logq) * logq, 0.0)
    running = np.cumsum(terms, axis=-1)
    tau = top_h[:, None] * running[:, -1:]
    count = np.maximum(np.count_nonzero(running <= tau, axis=-1), 1)
    thr: Array = d64[np.arange(z.shape[0]), count - 1]
    return thr


def _top_h_threshold_torch(z: Any, top_h: Array, n: int) -> Any:
    """:func:`_top_h_threshold` with torch operations on ``z``'s device."""
    import torch

    desc = torch.topk(z, n, dim=-1, largest=True, sorted=True).values
    d64 = desc.to(torch.float64)
    shifted = d64 - d64[:, :1]
    weights = torch.exp(shifted)
    log_total = torch.log(weights.sum(dim=-1, keepdim=True))
    finite = torch.isfinite(shifted)
    zero = torch.zeros((), dtype=torch.float64, device=z.device)
    logq = torch.where(finite, shifted - log_total, zero)
    terms = torch.where(finite, -torch.exp(logq) * logq, zero)
    running = torch.cumsum(terms, dim=-1)
    tau = on_device(top_h, z)[:, None] * running[:, -1:]
    count = torch.clamp((running <= tau).sum(dim=-1), min=1)
    return d64.gather(1, (count - 1)[:, None])[:, 0]


@dataclass(frozen=True, eq=False)
class TopH(Warper):
    """Top-H (Potraghloo et al., NeurIPS 2025): keep the top tokens within an entropy budget.

    Tokens are taken from the most likely down while the running sum of their
    entropy terms ``-q log q`` stays within ``top_h`` times the entropy ``H(q)``,
    where ``q`` is the distribution renormalised over the 100 most likely
    tokens; the most likely token is always kept.

    Parameters
    ----------
    top_h : float or array_like
        In (0, 1], one value or one per row. Smaller is more selective; the
        paper's experiments use about 0.3-0.6 (transformers' example: 0.4).
        ``top_h = 1`` keeps the 100 most likely tokens.

    Notes
    -----
    Matches transformers' ``TopHLogitsWarper`` (5.x): its ``top_n = 100``
    candidate cap, its entropy budget ``tau = top_h * H(q)`` over those
    candidates, and its running sum of the *unrenormalised* terms ``-q log q``
    (not the entropy of the renormalised kept set that the configuration's
    docstring describes). Differences: ties with the last kept token are all
    kept (transformers keeps whichever its ``topk`` lists first); sums are
    float64 (float32 there), and a candidate whose float32 probability
    underflows to 0 makes transformers' sum NaN and drops it, while here it
    contributes its (tiny) term. transformers places top-H right after
    temperature; llama.cpp has no top-H, and its order puts it with the
    other probability-based cuts.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.5, 0.25, 0.15, 0.1]))
    >>> np.isfinite(TopH(0.6)(z))  # budget 0.6 * 1.208 nats: 0.347 + 0.347 fits
    array([ True,  True, False, False])
    >>> np.isfinite(TopH(1.0)(z))
    array([ True,  True,  True,  True])
    """

    top_h: float | Array
    name: ClassVar[str] = "top_h"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_h", _freeze(check_fraction(self.top_h, "top_h")))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        thr = _top_h_threshold(z, rows_param(self.top_h, batch_shape, "top_h"))
        return K.apply_threshold(z, thr)


# -- p-less ----------------------------------------------------------------------


def _p_less_mask(z: Any, norm: bool) -> Any:
    """Tokens whose probability reaches the collision probability ``sum(p**2)`` (or its norm).

    ``p-less-norm`` rescales the cut to ``(V * sum(p**2) - 1) / (V - 1)`` with
    ``V`` the row length. The cut is capped at the top probability (which it
    never exceeds in exact arithmetic) so that rounding cannot empty a row,
    a uniform row included.
    """
    vocab = z.shape[-1]
    if is_torch(z):
        return _p_less_mask_torch(z, norm)
    z64 = z.astype(np.float64)
    w = np.exp(z64 - z64.max(axis=-1, keepdims=True))
    total = w.sum(axis=-1, keepdims=True)
    probs = w / total
    cut = np.einsum("ij,ij->i", probs, probs)[:, None]
    if norm:
        cut = (vocab * cut - 1.0) / (vocab - 1) if vocab > 1 else np.zeros_like(cut)
    keep: Array = probs >= np.minimum(cut, 1.0 / total)
    return keep


def _p_less_mask_torch(z: Any, norm: bool) -> Any:
    """:func:`_p_less_mask` with torch operations on ``z``'s device."""
    import torch

    vocab = z.shape[-1]
    z64 = z.to(torch.float64)
    w = torch.exp(z64 - z64.amax(dim=-1, keepdim=True))
    total = w.sum(dim=-1, keepdim=True)
    probs = w / total
    cut = (probs * probs).sum(dim=-1, keepdim=True)
    if norm:
        cut = (vocab * cut - 1.0) / (vocab - 1) if vocab > 1 else torch.zeros_like(cut)
    return probs >= torch.minimum(cut, 1.0 / total)


@dataclass(frozen=True, eq=False)
class PLess(Warper):
    """p-less sampling (Tan, Wu and Howard, ICLR 2026): a cut with no parameter.

    Each row keeps the tokens whose probability is at least the row's
    collision probability ``L = sum_v p(v)**2`` (the chance that two
    independent draws agree, ``exp`` of minus the order-2 Rényi entropy).
    ``L`` never exceeds the top probability, so the most likely token always
    stays; a peaked row keeps about its mode, a flat row most of its tokens.

    Parameters
    ----------
    variant : {"p-less", "p-less-norm"}, default "p-less"
        ``"p-less-norm"`` relaxes the cut to ``(V * L - 1) / (V - 1)`` (``V``
        the vocabulary size: 0 for a uniform row), keeping more tokens, for
        tasks that favour diversity over coherence.

    Notes
    -----
    The definition is the paper's (arXiv:2509.23234) and its authors'
    reference code (``p_less_decode`` / ``p_less_norm_decode``): keep
    ``p >= L``, with ``V = probs.size(-1)``, the row length, for the norm.
    It matches the authors' transformers pull request (#41798,
    ``PLessLogitsWarper`` / ``PLessNormLogitsWarper``, open), the one with
    both variants, and the llama.cpp pull request (#26035, open) except
    that the latter lowers the cut by 1e-5 so that float32 rounding cannot
    drop every token of a uniform row; here the cut is instead capped at the
    top probability, which keeps a uniform row whole with no offset.
    Because ``V`` counts removed (``-inf``) tokens too, ``p-less-norm``
    depends on the row length and does not run on the fused path's compact
    candidates; plain p-less does. Sums are float64. thermoscope places
    p-less after the other truncations in both orders (neither library has it).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    >>> np.isfinite(PLess()(z))  # L = 0.365
    array([ True, False, False, False])
    >>> np.isfinite(PLess("p-less-norm")(z))  # (4 * 0.365 - 1) / 3 = 0.153
    array([ True,  True, False, False])
    """

    variant: str = "p-less"
    name: ClassVar[str] = "p_less"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not isinstance(self.variant, str) or self.variant not in P_LESS_VARIANTS:
            raise (TypeError if not isinstance(self.variant, str) else ValueError)(
                f"`variant` must be 'p-less' or 'p-less-norm', got {self.variant!r}."
            )
        if self.variant == "p-less-norm":
            # The norm's V counts the -inf tokens: not a function of the finite values alone.
            object.__setattr__(self, "on_candidates", False)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return _kernels_for(z).apply_mask(z, _p_less_mask(z, self.variant == "p-less-norm"))
