"""NT-Xent's forward and backward with one (2N, 2N) matrix alive.

The plain formulation builds the similarity matrix, a masked copy, its
log-softmax, and as many matrices again in the backward pass. Here the
similarities are written once into a (2N, 2N) buffer; blocks of rows then get
their mask and their log-softmax by the one kernel
(:func:`thermoscope._temperature.log_softmax`), and each block is turned into
probabilities ``P`` in place. The backward pass needs nothing else: two
matrix products with ``P``, no (2N, 2N) temporary.

With unit rows ``z``, ``c_ij = z_i . z_j``, ``s_ij = scale_i * c_ij`` (self and
excluded pairs at ``-inf``), ``pos(i) = i + N mod 2N`` (an involution) and the
per-anchor loss ``l_i = logsumexp_j s_ij - s_i,pos(i)`` with upstream gradient
``g_i``: ``dl/ds_ij = g_i (P_ij - [j = pos(i)])``. With ``w = g * scale``,

- rows: ``dz_i += w_i ((P z)_i - z_pos(i))``,
- columns: ``dz += P^T (w z) - (w z)[pos]``,
- ``dscale_i = g_i z_i . ((P z)_i - z_pos(i))``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from thermoscope import _temperature as kernel

__all__ = ["block_rows", "nt_xent_rows"]

_BLOCK = 1 << 20  # elements of one block of rows (4 MB of float32)


def block_rows(n2: int) -> int:
    """Rows per block for 2N anchors: about ``_BLOCK`` similarities, at least one row."""
    return max(1, min(n2, _BLOCK // max(n2, 1)))


def _column(x: torch.Tensor) -> torch.Tensor:
    """A 0-d scale as is, a per-anchor one as a column."""
    return x if x.ndim == 0 else x[:, None]


class _NTXent(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, scale: torch.Tensor, exclude: torch.Tensor | None
    ) -> torch.Tensor:
        n2 = z.shape[0]
        n = n2 // 2
        anchors = torch.arange(n2, device=z.device)
        positive = (anchors + n) % n2
        # Scaling the (2N, D) factor costs 2N * D multiplications, not (2N)^2.
        probs = torch.mm(z * _column(scale), z.T)
        losses = torch.empty(n2, dtype=z.dtype, device=z.device)
        step = block_rows(n2)
        for r0 in range(0, n2, step):
            r1 = min(n2, r0 + step)
            rows = anchors[r0:r1]
            block = probs[r0:r1]
            block[rows - r0, rows] = float("-inf")  # an anchor is not its own negative
            if exclude is not None:
                block.masked_fill_(exclude[rows % n].repeat(1, 2), float("-inf"))
            logp = kernel.log_softmax(block, 1.0, -1)
            losses[r0:r1] = -logp[rows - r0, positive[r0:r1]]
            torch.exp(logp, out=block)
        ctx.save_for_backward(z, scale, probs)
        return losses

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, Any, None]:
        z, scale, probs = ctx.saved_tensors
        n2 = z.shape[0]
        positive = (torch.arange(n2, device=z.device) + n2 // 2) % n2
        resid = torch.mm(probs, z).sub_(z[positive])  # (P z)_i - z_pos(i)
        wz = z * (grad * scale)[:, None]
        dz = resid * (grad * scale)[:, None]
        dz.addmm_(probs.T, wz).sub_(wz[positive])
        if not ctx.needs_input_grad[1]:
            return dz, None, None
        dscale = grad * (z * resid).sum(dim=1)
        return dz, (dscale.sum() if scale.ndim == 0 else dscale), None


def nt_xent_rows(z: torch.Tensor, scale: torch.Tensor, exclude: torch.Tensor | None) -> Any:
    """Per-anchor NT-Xent losses (2N,) of unit rows ``z`` (2N, D), views stacked [z1; z2].

    ``scale`` is ``1 / T``: 0-d or one per anchor (2N,). ``exclude`` (N, N)
    bool, diagonal False, marks item pairs left out of the denominators.

    Examples
    --------
    >>> z = torch.eye(2).repeat(2, 1)  # the two views agree
    >>> [round(x, 4) for x in nt_xent_rows(z, torch.tensor(1.0), None).tolist()]  # log(1 + 2/e)
    [0.5514, 0.5514, 0.5514, 0.5514]
    """
    return _NTXent.apply(z, scale, exclude)  # type: ignore[no-untyped-call]
