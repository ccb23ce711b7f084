"""Kept candidates of torch rows: the compact form the fused path works on.

:class:`Compact` holds each row's kept values and token ids (ascending ids,
the draw's order); :func:`compact_mask` gathers a boolean mask's entries,
:func:`_order_by_id` sorts a candidate set by id, :func:`_candidates` finds
the groups that can hold a row's largest values. Shared by
:mod:`~thermoscope.sampling._fused_torch` and
:mod:`~thermoscope.sampling._bands_torch`, below both.
"""

from __future__ import annotations

from typing import Any

import torch

from thermoscope._temperature import row_weights
from thermoscope.sampling._rowdraw import draw_rows

_GROUP = 32  # tokens per group for the top-k candidate search


class Compact:
    """Kept candidates per row: values (``-inf`` where not valid), token ids, validity.

    Valid entries are in ascending token-id order (the draw's order); entries
    that are not valid carry the id ``vocab``, one past the last token.
    """

    __slots__ = ("ids", "valid", "vals", "vocab")

    def __init__(self, vals: Any, ids: Any, valid: Any, vocab: int):
        self.vals = vals
        self.ids = ids
        self.valid = valid
        self.vocab = vocab

    def weights(self) -> Any:
        """The plain chain's weights of the candidates: ``exp(vals - row max)``."""
        return row_weights(self.vals)[0]

    def _scatter(self, values: Any, fill: float) -> Any:
        rows = values.shape[0]
        out = torch.full((rows, self.vocab + 1), fill, dtype=values.dtype, device=values.device)
        out.scatter_(1, self.ids, values)
        return out[:, : self.vocab]

    def dense_logits(self) -> Any:
        """Warped logits over the whole vocabulary."""
        return self._scatter(self.vals, float("-inf"))

    def dense_probs(self) -> Any:
        """Probabilities over the whole vocabulary (as the kernel's ``softmax_rows``)."""
        w = self.weights()
        return self._scatter(w / w.sum(dim=-1, keepdim=True), 0.0)

    def masked_vals(self) -> Any:
        """Values, ``-inf`` where not valid."""
        return self.vals

    def token_ids(self, pos: Any) -> Any:
        """Token ids at candidate positions ``pos`` (B, n)."""
        return self.ids.gather(1, pos)

    def positions(self, u: Any, bits: int) -> Any:
        """Candidate positions drawn with the shared inverse-CDF routine."""
        return draw_rows(self.weights(), u, bits)

    def sample(self, u: Any, bits: int) -> Any:
        """Token ids drawn with the shared inverse-CDF routine."""
        return self.token_ids(self.positions(u, bits))


def _order_by_id(vals: Any, ids: Any, keep: Any, vocab: int) -> Compact:
    """A Compact of the kept entries, sorted by token id (the others last, id ``vocab``)."""
    key, order = torch.sort(torch.where(keep, ids, vocab), dim=-1)
    valid = keep.gather(1, order)
    out = torch.where(valid, vals.gather(1, order), float("-inf"))
    return Compact(out, key, valid, vocab)


def compact_mask(z: Any, keep: Any) -> Compact:
    """Gather the kept entries of each row, in ascending token-id order (sizes read once)."""
    rows, vocab = z.shape
    idx = torch.nonzero(keep)  # row-major: ascending token ids within a row
    r, c = idx[:, 0], idx[:, 1]
    counts = torch.bincount(r, minlength=rows)
    width = max(int(counts.max()) if rows else 0, 1)
    # Flat positions: row r's i-th kept entry goes to r * width + i.
    first = torch.cumsum(counts, 0) - counts  # index in idx of each row's first entry
    dest = torch.arange(r.shape[0], device=z.device) + (r * width - first[r])
    vals = torch.full((rows * width,), float("-inf"), dtype=z.dtype, device=z.device)
    ids = torch.full((rows * width,), vocab, dtype=torch.int64, device=z.device)
    picked = z.view(-1).index_select(0, r * vocab + c) if z.is_contiguous() else z[r, c]
    vals.index_copy_(0, dest, picked)
    ids.index_copy_(0, dest, c)
    valid = torch.arange(width, device=z.device) < counts[:, None]
    return Compact(vals.view(rows, width), ids.view(rows, width), valid, vocab)


def _candidates(z: Any, want: int) -> tuple[Any, Any, Any]:
    """Candidate token ids (B, C), their values, and the largest value outside them (B,).

    Every token not among the candidates is at most the returned value (a
    group maximum, or -inf when every token is a candidate).
    """
    rows, vocab = z.shape
    groups = vocab // _GROUP
    if groups < 4 * want:
        ids = torch.arange(vocab, device=z.device).expand(rows, vocab)
        edge = torch.full((rows,), float("-inf"), dtype=z.dtype, device=z.device)
        return ids, z, edge
    main = groups * _GROUP
    maxima = z[:, :main].reshape(rows, groups, _GROUP).amax(dim=-1)
    take = min(want + 1, groups)
    gv, gi = torch.topk(maxima, take, dim=-1)
    chosen = min(want, groups)
    if chosen < groups:
        edge = gv[:, chosen]
    else:
        edge = torch.full((rows,), float("-inf"), dtype=z.dtype, device=z.device)
    offsets = torch.arange(_GROUP, device=z.device)
    ids = (gi[:, :chosen, None] * _GROUP + offsets).reshape(rows, chosen * _GROUP)
    if main < vocab:  # the last few tokens: always candidates
        tail = torch.arange(main, vocab, device=z.device).expand(rows, vocab - main)
        ids = torch.cat([ids, tail], dim=1)
    return ids, z.gather(1, ids), edge
