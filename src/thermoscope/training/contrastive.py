"""Contrastive losses with a temperature: InfoNCE, NT-Xent (SimCLR) and CLIP's symmetric loss.

All three compare unit vectors: the features are L2-normalised inside
(``torch.nn.functional.normalize``; a zero vector stays zero, similarity 0 to
everything), so the logits are cosine similarities divided by ``T``, in
``[-1 / T, 1 / T]``. The log-softmax is the library's one kernel
(:func:`thermoscope._temperature.log_softmax`), stable at any ``T > 0``.

``temperature`` is a number, a 0-d tensor (its gradient flows) or a
:class:`~thermoscope.training.LearnableTemperature`; it must be finite and
``> 0``. ``torch.nn`` still has no InfoNCE (pytorch issue 97539).

Examples
--------
>>> import torch
>>> from thermoscope.training import info_nce_loss
>>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> round(info_nce_loss(q, q, temperature=1.0).tolist(), 4)  # log(1 + e^-1)
0.3133
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from thermoscope import _temperature as kernel
from thermoscope._validation import check_labels
from thermoscope.training._inputs import (
    check_reduction,
    features,
    positive_temperature,
    reduce,
)
from thermoscope.training._nt_xent import nt_xent_rows
from thermoscope.training.temperature import LearnableTemperature

__all__ = ["clip_loss", "info_nce_loss", "nt_xent_loss"]

Reduction = Literal["mean", "sum", "none"]


def _same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"`{name_b}` must have the shape of `{name_a}`, {tuple(a.shape)}, "
            f"got shape {tuple(b.shape)}."
        )


def _common(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def info_nce_loss(
    query: torch.Tensor,
    keys: torch.Tensor,
    *,
    temperature: Any,
    positive: Any = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """InfoNCE: each query against all keys, its positive key as the class to predict.

    Parameters
    ----------
    query : torch.Tensor, shape (N, D)
        Query features (L2-normalised inside).
    keys : torch.Tensor, shape (M, D)
        Key features (L2-normalised inside): each query's positive and the
        negatives it is contrasted with.
    temperature : float, torch.Tensor or LearnableTemperature
        ``T > 0``: one number, or one per query (shape (N,)).
    positive : array_like of int, shape (N,), optional
        Index in ``keys`` of each query's positive. Default ``arange(N)``
        (key ``i`` belongs to query ``i``), which needs ``M >= N``.
    reduction : {"mean", "sum", "none"}, default "mean"
        Mean or sum over the queries, or the (N,) per-query losses.

    Returns
    -------
    torch.Tensor
        The loss, in the inputs' dtype (half precision computed in float32).

    Notes
    -----
    ``l_i = -log softmax_j(cos(q_i, k_j) / T_i)[positive_i]``
    ``= -cos(q_i, k_pos) / T + log sum_j exp(cos(q_i, k_j) / T)``
    (van den Oord et al. 2018), which is ``F.cross_entropy`` on the
    cosine-similarity logits.

    Examples
    --------
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0]])
    >>> k = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # positive, opposite negative
    >>> round(info_nce_loss(q, k, temperature=0.5).tolist(), 4)  # log(1 + e^-4)
    0.0181
    """
    reduction = check_reduction(reduction)  # type: ignore[assignment]
    q, back = features(query, "query")
    k, _ = features(keys, "keys")
    q, k = _common(q, k)
    if q.shape[1] != k.shape[1]:
        raise ValueError(
            f"`keys` must have the feature dimension of `query`, {q.shape[1]}, "
            f"got shape {tuple(k.shape)}."
        )
    n, m = q.shape[0], k.shape[0]
    if positive is None:
        if m < n:
            raise ValueError(
                f"`keys` must have at least as many rows as `query` ({n}) when `positive` "
                f"is None (key i is query i's positive), got {m} rows."
            )
        pos = torch.arange(n, device=q.device)
    else:
        pos = torch.as_tensor(check_labels(positive, m, (n,), "positive"), device=q.device)
    t = positive_temperature(temperature, q, (n,))
    cos = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T
    logp = kernel.log_softmax(cos, t, -1)
    losses = -logp.gather(1, pos[:, None]).squeeze(1)
    return back(reduce(losses, reduction))  # type: ignore[no-any-return]


def _exclusion(mask: Any, n: int, device: torch.device) -> torch.Tensor | None:
    """The (N, N) duplicate mask as bool on ``device``, diagonal cleared; None if nothing left."""
    if mask is None:
        return None
    m = torch.as_tensor(mask, device=device)
    if m.dtype != torch.bool:
        raise TypeError(f"`mask` must be a boolean array, got dtype {m.dtype}.")
    if tuple(m.shape) != (n, n):
        raise ValueError(f"`mask` must have shape ({n}, {n}), got shape {tuple(m.shape)}.")
    return m & ~torch.eye(n, dtype=torch.bool, device=device)


def nt_xent_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: Any,
    mask: Any = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """SimCLR's NT-Xent: each of the 2N views against its other view and 2N - 2 negatives.

    Parameters
    ----------
    z1, z2 : torch.Tensor, shape (N, D)
        The two views' features (row ``i`` of each is item ``i``), N >= 2;
        L2-normalised inside (SimCLR's cosine similarity).
    temperature : float, torch.Tensor or LearnableTemperature
        ``T > 0``: one number, or one per item (shape (N,), used for both of
        its views). SimCLR's default is 0.5 (0.1 with large batches).
    mask : array_like of bool, shape (N, N), optional
        ``mask[i, j] = True`` says item ``j`` is a duplicate of item ``i``
        (the same image twice in a batch, say): both views of ``j`` are left
        out of the denominators of both views of ``i`` (they are neither the
        positive nor negatives). Row ``i`` affects only anchors ``i`` and
        ``N + i``; make it symmetric to exclude the pair both ways. The
        diagonal is ignored (an item's own views are its anchor and its
        positive), so ``labels[:, None] == labels[None, :]`` works as is.
    reduction : {"mean", "sum", "none"}, default "mean"
        Mean or sum over the 2N anchors, or the (2N,) per-anchor losses
        (anchors ``0..N-1`` are ``z1``'s rows, ``N..2N-1`` are ``z2``'s).

    Returns
    -------
    torch.Tensor
        The loss, in the inputs' dtype (half precision computed in float32).

    Notes
    -----
    With ``u = [z1; z2] / ||.||`` (2N rows), ``p(a) = a + N mod 2N`` and
    ``s_ab = u_a . u_b / T``:
    ``l_a = -s_a,p(a) + log sum_{b != a, b not excluded} exp(s_ab)`` and the
    loss is the mean over the 2N anchors (Chen et al. 2020, eq. 1; SimCLR's
    TensorFlow code returns the sum of the two directions' means, twice
    this). The (2N, 2N) matrix is processed in row blocks with a hand-written
    backward (see :mod:`thermoscope.training._nt_xent`): it keeps one matrix
    where ``F.cross_entropy`` on a masked matrix keeps several.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(nt_xent_loss(z, z, temperature=1.0).tolist(), 4)  # log(1 + 2 / e)
    0.5514
    """
    reduction = check_reduction(reduction)  # type: ignore[assignment]
    a, back = features(z1, "z1")
    b, _ = features(z2, "z2")
    a, b = _common(a, b)
    _same_shape(a, b, "z1", "z2")
    n = a.shape[0]
    if n < 2:
        raise ValueError(
            f"`z1` must have at least 2 rows (NT-Xent needs negatives), got shape {tuple(a.shape)}."
        )
    exclude = _exclusion(mask, n, a.device)
    t = positive_temperature(temperature, a, (n,))
    if isinstance(t, float):
        scale = torch.tensor(1.0 / t, dtype=a.dtype, device=a.device)
    else:
        scale = 1.0 / t
        if scale.ndim == 1:
            scale = torch.cat([scale, scale])
    u = torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)])
    losses = nt_xent_rows(u, scale, exclude)
    return back(reduce(losses, reduction))  # type: ignore[no-any-return]


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    *,
    logit_scale: Any = None,
    temperature: Any = None,
) -> torch.Tensor:
    """CLIP's symmetric loss: the mean of the image->text and text->image cross-entropies.

    Parameters
    ----------
    image_features, text_features : torch.Tensor, shape (N, D)
        Paired features (row ``i`` of each is pair ``i``), L2-normalised inside.
    logit_scale : float, torch.Tensor or LearnableTemperature, optional
        The multiplier ``1 / T`` of the cosine similarities: CLIP's
        ``logit_scale.exp()`` (open_clip's ``ClipLoss`` argument), not the log
        parameter itself. Give this or ``temperature``, not both.
    temperature : float, torch.Tensor or LearnableTemperature, optional
        ``T = 1 / logit_scale``.

    Returns
    -------
    torch.Tensor
        The scalar loss, in the inputs' dtype (half precision computed in float32).

    Notes
    -----
    With ``L = cos(image_i, text_j) / T`` (N, N):
    ``loss = (CE(L, arange N) + CE(L^T, arange N)) / 2``, each cross-entropy
    a mean over the N pairs (Radford et al. 2021, figure 3; transformers'
    ``clip_loss``).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(clip_loss(x, x, logit_scale=1.0).tolist(), 4)  # log(1 + e^-1)
    0.3133
    """
    if (logit_scale is None) == (temperature is None):
        given = "neither" if logit_scale is None else "both"
        raise ValueError(
            f"`logit_scale` or `temperature` must be given (one of them), got {given}."
        )
    img, back = features(image_features, "image_features")
    txt, _ = features(text_features, "text_features")
    img, txt = _common(img, txt)
    _same_shape(img, txt, "image_features", "text_features")
    if temperature is not None:
        t = positive_temperature(temperature, img, ())
    elif isinstance(logit_scale, LearnableTemperature):
        t = positive_temperature(logit_scale, img, ())
    else:
        s = positive_temperature(logit_scale, img, (), "logit_scale")
        t = 1.0 / s
    cos = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T
    per_image = -torch.diagonal(kernel.log_softmax(cos, t, -1))
    per_text = -torch.diagonal(kernel.log_softmax(cos, t, 0))
    return back((per_image.mean() + per_text.mean()) / 2)  # type: ignore[no-any-return]
