"""Knowledge distillation: Hinton's soft-target loss, in numpy and (differentiable) torch.

A teacher's probabilities at a raised temperature ``T`` carry "dark
knowledge": how much more a 7 resembles a 1 than an 8. The student learns
them by minimising ``T**2 * KL(softmax(t / T) || softmax(s / T))``, usually
mixed with the ordinary cross-entropy on the hard labels (Hinton, Vinyals and
Dean, "Distilling the Knowledge in a Neural Network", 2015).

The per-element pitfall
-----------------------
The KL divergence of a distribution is a *sum* over its classes. The widely
copied ``torch.nn.KLDivLoss(reduction="mean")`` recipe averages over every
element instead, so its loss (and gradient) is ``1 / C`` of the real KL for
``C`` classes; torch itself now warns about it. ``kd_loss`` sums over classes
and averages over examples (torch's ``reduction="batchmean"``):

>>> import warnings
>>> import torch
>>> import torch.nn.functional as F
>>> from thermoscope.distill import kd_loss
>>> g = torch.Generator().manual_seed(0)
>>> s, t = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", UserWarning)  # torch's warning about this very recipe
...     per_element = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(s, -1), F.softmax(t, -1))
>>> round(float(kd_loss(s, t, 1.0, alpha=1.0) / per_element), 4)  # C = 10 classes
10.0

For sequence logits ``(B, L, V)`` torch's ``batchmean`` divides by ``B`` only,
which gives a per-*sequence* sum that grows with the length; ``kd_loss``
averages per *token* (and skips padding given a ``mask``), the quantity that
stays comparable across batches of different lengths. Flatten to
``(B * L, V)`` to get the same number from torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch, numeric_numpy
from thermoscope._typing import FloatArray
from thermoscope._validation import _show, check_fraction, check_labels, check_logits

if TYPE_CHECKING:
    import torch

__all__ = ["kd_loss"]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")
_ALLOWED_T = "a positive finite number (T = 0 and T = inf have no distillation loss)"


# ------------------------------------------------------------------ validation
def _check_temperature(temperature: Any) -> Any:
    """A strictly positive, finite temperature (the KD loss has no T = 0 or T = inf form).

    A number comes back as a float; a one-element torch tensor (a learnable
    temperature) comes back as a 0-d floating tensor on its device, checked
    there, so gradients reach it.
    """
    if is_torch(temperature):
        return _check_temperature_tensor(temperature)
    if isinstance(temperature, bool):
        raise TypeError(f"`temperature` must be {_ALLOWED_T}, got {temperature!r}.")
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"`temperature` must be {_ALLOWED_T}, got {temperature!r}.") from None
    if not 0 < t < math.inf:
        raise ValueError(f"`temperature` must be {_ALLOWED_T}, got {t!r}.")
    return t


def _check_temperature_tensor(temperature: Any) -> Any:
    import torch

    if temperature.is_complex() or temperature.dtype == torch.bool or temperature.numel() != 1:
        raise TypeError(f"`temperature` must be {_ALLOWED_T}, got {temperature!r}.")
    t = temperature.reshape(())
    if not t.dtype.is_floating_point:
        t = t.to(torch.float64)
    if not bool((t > 0) & torch.isfinite(t)):
        raise ValueError(f"`temperature` must be {_ALLOWED_T}, got {_show(t)}.")
    return t


def _check_options(temperature: Any, labels: Any, alpha: Any, reduction: Any) -> tuple[Any, float]:
    t = _check_temperature(temperature)
    if isinstance(alpha, bool):
        raise TypeError(f"`alpha` must be a number in [0, 1], got {alpha!r}.")
    if np.ndim(alpha) != 0:
        raise ValueError(f"`alpha` must be a scalar in [0, 1], got shape {np.shape(alpha)}.")
    a = float(check_fraction(alpha, "alpha", low_open=False))
    if labels is None and a < 1:
        raise ValueError(
            f"`labels` must be given when `alpha` < 1 (the hard-label term has weight "
            f"1 - alpha = {1 - a:g}); pass alpha=1.0 for the soft-target loss alone, got None."
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of 'mean', 'sum', 'none' ('mean' is torch's "
            f"'batchmean' for (B, C) logits), got {reduction!r}."
        )
    return t, a


def _check_shapes(s_shape: tuple[int, ...], t_shape: tuple[int, ...]) -> None:
    if len(s_shape) == 0:
        raise ValueError("`student_logits` must have at least 1 dimension (classes), got a scalar.")
    if t_shape != s_shape:
        raise ValueError(
            f"`teacher_logits` must have the shape of `student_logits`, {s_shape}, got {t_shape}."
        )
    if math.prod(s_shape) == 0:
        raise ValueError(f"`student_logits` must not be empty, got shape {s_shape}.")


def _check_mask(mask: Any, batch: tuple[int, ...]) -> Any:
    """The padding mask as a boolean array of its own library (a tensor stays on its device)."""
    if mask is None:
        return None
    if is_torch(mask):
        import torch

        m = mask
        if m.dtype != torch.bool:
            if m.is_complex() or not bool(((m == 0) | (m == 1)).all()):
                raise TypeError(
                    f"`mask` must be boolean (or 0/1), True for the positions that count, "
                    f"got dtype {m.dtype}."
                )
            m = m != 0
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
                raise TypeError(
                    f"`mask` must be boolean (or 0/1), True for the positions that count, "
                    f"got dtype {m.dtype}."
                )
            m = m.astype(bool)
    if tuple(m.shape) != batch:
        raise ValueError(
            f"`mask` must have the logits' shape without the class axis, {batch}, "
            f"got {tuple(m.shape)}."
        )
    if not bool(m.any()):
        raise ValueError("`mask` must keep at least one position, got all False.")
    return m


# --------------------------------------------------------------------- kernels
def _kd_numpy(s: np.ndarray, t: np.ndarray, temp: float, y: Any, alpha: float) -> np.ndarray:
    """Per-position loss ``alpha T^2 KL + (1 - alpha) CE`` for float64 logits (..., C)."""
    loss = np.zeros(s.shape[:-1])
    if alpha > 0:
        log_q = kernel.log_softmax(s, temp, -1)
        log_p = kernel.log_softmax(t, temp, -1)
        p = np.exp(log_p)
        # A class the teacher gives probability 0 contributes 0 log 0 = 0; choosing
        # before multiplying keeps -inf - -inf from turning into NaN.
        with np.errstate(invalid="ignore"):
            gap = np.where(p > 0, log_p - log_q, 0.0)
        loss = loss + alpha * temp**2 * np.sum(p * gap, axis=-1)
    if alpha < 1:
        log_q1 = kernel.log_softmax(s, 1.0, -1)
        # Padding positions may hold any label; clip so the gather stays in range.
        picked = np.take_along_axis(log_q1, np.clip(y, 0, s.shape[-1] - 1)[..., None], axis=-1)
        loss = loss - (1 - alpha) * picked[..., 0]
    return loss


def _kd_torch(s: Any, t: Any, temp: Any, y: Any, alpha: float) -> Any:
    """The same per-position loss with torch ops on the logits' device; autograd flows to
    ``s``, ``t`` and a tensor ``temp``."""
    import torch

    loss = torch.zeros(s.shape[:-1], dtype=s.dtype, device=s.device)
    if alpha > 0:
        log_q = kernel.log_softmax(s, temp, -1)
        log_p = kernel.log_softmax(t, temp, -1)
        p = log_p.exp()
        # Select before multiplying: the unselected branch then gets a zero
        # gradient instead of 0 * inf = NaN.
        gap = torch.where(p > 0, log_p - log_q, torch.zeros((), dtype=p.dtype, device=p.device))
        loss = loss + alpha * temp**2 * (p * gap).sum(dim=-1)
    if alpha < 1:
        log_q1 = kernel.log_softmax(s, 1.0, -1)
        index = y.clamp(0, s.shape[-1] - 1).unsqueeze(-1)
        loss = loss - (1 - alpha) * log_q1.gather(-1, index).squeeze(-1)
    return loss


def _reduce(loss: Any, mask: Any, reduction: str) -> Any:
    """Zero the padding positions, then sum, average over counted positions, or keep all.

    Padding is selected away (not multiplied by 0), so an infinite loss at a
    padding position cannot turn into NaN.
    """
    if mask is not None:
        if is_torch(loss):
            import torch

            loss = torch.where(mask, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))
        else:
            loss = np.where(mask, loss, 0.0)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = mask.sum() if mask is not None else math.prod(loss.shape)
    return total / count


# ---------------------------------------------------------------------- public
@overload
def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: Any,
    temperature: Any,
    *,
    labels: Any = ...,
    alpha: float = ...,
    reduction: Reduction = ...,
    mask: Any = ...,
) -> torch.Tensor: ...
@overload
def kd_loss(
    student_logits: Any,
    teacher_logits: torch.Tensor,
    temperature: Any,
    *,
    labels: Any = ...,
    alpha: float = ...,
    reduction: Reduction = ...,
    mask: Any = ...,
) -> torch.Tensor: ...
@overload
def kd_loss(
    student_logits: npt.ArrayLike,
    teacher_logits: npt.ArrayLike,
    temperature: float,
    *,
    labels: npt.ArrayLike | None = ...,
    alpha: float = ...,
    reduction: Literal["mean", "sum"] = ...,
    mask: npt.ArrayLike | None = ...,
) -> float: ...
@overload
def kd_loss(
    student_logits: npt.ArrayLike,
    teacher_logits: npt.ArrayLike,
    temperature: float,
    *,
    labels: npt.ArrayLike | None = ...,
    alpha: float = ...,
    reduction: Literal["none"],
    mask: npt.ArrayLike | None = ...,
) -> FloatArray: ...
def kd_loss(
    student_logits: Any,
    teacher_logits: Any,
    temperature: Any,
    *,
    labels: Any = None,
    alpha: float = 0.5,
    reduction: Reduction = "mean",
    mask: Any = None,
) -> Any:
    """Hinton's distillation loss ``alpha T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE(s, y)``.

    Parameters
    ----------
    student_logits : array_like or torch.Tensor
        Shape ``(..., C)``: ``(C,)`` one example, ``(B, C)`` a batch, ``(B, L, V)``
        a batch of sequences. The last axis holds the classes. ``-inf`` marks a
        masked class; NaN and ``+inf`` are rejected.
    teacher_logits : array_like or torch.Tensor
        The same shape. In training it usually comes from a ``torch.no_grad()``
        forward pass; if it requires grad, gradients flow to it too.
    temperature : float or torch.Tensor
        ``T > 0`` and finite: both distributions are ``softmax(logits / T)``.
        Hinton et al. use 1-20; 2-8 is typical for small students. ``T = 0``
        and ``T = inf`` are rejected (the loss has no finite form there; the
        ``T -> inf`` limit is logit matching, see Notes). A one-element
        tensor (a learnable temperature) stays on the autograd graph: the
        loss is differentiable with respect to it.
    labels : array_like of int or torch.Tensor, optional
        Hard labels of shape ``(...)`` (the logits' shape without ``C``), in
        ``[0, C)``. Required when ``alpha < 1``: without labels there is no
        hard-label term, and silently dropping it would rescale the loss, so a
        missing ``labels`` with ``alpha < 1`` is an error; pass ``alpha=1.0``
        for the soft-target loss alone. Positions where ``mask`` is False may
        hold anything (e.g. ``-100``).
    alpha : float, default 0.5
        Weight of the soft-target term, in ``[0, 1]``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` averages over positions (examples, or tokens of sequences)
        that ``mask`` keeps: for ``(B, C)`` this is torch's ``"batchmean"``.
        ``"sum"`` adds them; ``"none"`` returns one loss per position (0 where
        masked), shape ``(...)``.
    mask : array_like of bool or torch.Tensor, optional
        Shape ``(...)``; True for positions that count (real tokens), False for
        padding. The transformers ``attention_mask`` (1/0) works as is.

    Returns
    -------
    float (or a float64 array for ``reduction="none"``) for numpy input,
    computed in float64. For torch input (any of the logits, ``temperature``,
    ``labels`` or ``mask`` a tensor): a tensor computed with torch operations
    on the device of the first tensor among the logits (else of the first
    tensor argument), differentiable with respect to the logits and a tensor
    temperature, in the dtype of the first tensor among the logits
    (float16/bfloat16 computed and returned in float32; float64 when neither
    logits is a tensor). The checks run on that device too, and tensor
    labels and masks stay there: nothing is copied to the host.

    Raises
    ------
    ValueError
        Mismatched shapes, ``temperature <= 0`` or infinite, ``alpha`` outside
        ``[0, 1]``, labels out of range or missing, a bad ``reduction``, NaN
        or ``+inf`` logits, a mask that keeps nothing.
    TypeError
        Non-numeric temperature or alpha, non-integer labels, a non-boolean mask.

    Notes
    -----
    With ``p = softmax(t / T)`` and ``q = softmax(s / T)``, per position::

        loss = alpha * T^2 * sum_i p_i (log p_i - log q_i) - (1 - alpha) * log softmax(s)_y

    computed from ``log_softmax`` (never ``log(softmax)``), so it is stable for
    any finite logits; the hard-label term is at ``T = 1``. Its gradient with
    respect to the student's logits is ``alpha * T * (q - p)``: the soft
    targets' gradients shrink like ``1 / T^2`` and the ``T^2`` restores them,
    so changing ``T`` does not change the balance with the hard-label term.
    As ``T -> inf`` with zero-mean logits, ``q - p -> (s - t) / (C T)`` and
    the soft-target gradient tends to ``alpha * (s - t) / C``: distillation
    becomes matching logits with the squared error
    ``alpha * ||s - t||^2 / (2 C)`` (Hinton et al., section 2.1).

    The KL is summed over classes and averaged over positions; see the module
    docstring for the ``1 / C`` pitfall of ``KLDivLoss(reduction="mean")``.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.distill import kd_loss
    >>> s = np.array([[2.0, 0.5, -1.0], [0.1, 1.2, 0.3]])
    >>> t = np.array([[3.0, 1.0, -2.0], [0.0, 2.0, 0.5]])
    >>> round(kd_loss(s, t, temperature=2.0, alpha=1.0), 6)
    0.109188
    >>> round(kd_loss(s, t, temperature=2.0, labels=[0, 1], alpha=0.7), 6)
    0.195663
    >>> kd_loss(s, s, temperature=4.0, alpha=1.0)  # identical logits: no loss
    0.0

    A learnable temperature gets a gradient:

    >>> import torch
    >>> temp = torch.tensor(2.0, requires_grad=True)
    >>> kd_loss(torch.tensor(s), torch.tensor(t), temp, alpha=1.0).backward()
    >>> temp.grad is not None
    True
    """
    temp, a = _check_options(temperature, labels, alpha, reduction)
    if any(is_torch(x) for x in (student_logits, teacher_logits, temp, labels, mask)):
        return _kd_loss_torch(student_logits, teacher_logits, temp, labels, a, reduction, mask)
    s = _as_float64(student_logits, "student_logits")
    t = _as_float64(teacher_logits, "teacher_logits")
    _check_shapes(s.shape, t.shape)
    check_logits(s, "student_logits")
    check_logits(t, "teacher_logits")
    batch, classes = s.shape[:-1], s.shape[-1]
    m = _check_mask(mask, batch)
    y = None
    if a < 1:
        y = check_labels(labels, classes, batch, where=m)
    out = _reduce(_kd_numpy(s, t, temp, y, a), m, reduction)
    return np.asarray(out, dtype=np.float64) if reduction == "none" else float(out)


def _kd_loss_torch(
    student_logits: Any,
    teacher_logits: Any,
    temp: Any,
    labels: Any,
    alpha: float,
    reduction: str,
    mask: Any,
) -> Any:
    import torch

    logits = [x for x in (student_logits, teacher_logits) if is_torch(x)]
    ref = next(x for x in (*logits, temp, labels, mask) if is_torch(x))
    device = ref.device
    # The student's (else the teacher's) precision; float64, as numpy, when neither is a tensor.
    dtype = torch.float64
    if logits:
        dtype = (
            logits[0].dtype if logits[0].dtype in (torch.float32, torch.float64) else torch.float32
        )
    s = _as_tensor(student_logits, "student_logits", dtype, device)
    t = _as_tensor(teacher_logits, "teacher_logits", dtype, device)
    _check_shapes(tuple(s.shape), tuple(t.shape))
    check_logits(s, "student_logits")
    check_logits(t, "teacher_logits")
    batch, classes = tuple(s.shape[:-1]), int(s.shape[-1])
    m = _check_mask(mask, batch)
    if m is not None:
        m = torch.as_tensor(m, device=device)
    y = None
    if alpha < 1:
        if not is_torch(labels):
            labels = torch.as_tensor(numeric_numpy(labels, "labels")[0])
        y = check_labels(labels.to(device), classes, batch, where=m)
    if is_torch(temp):
        temp = temp.to(dtype=dtype, device=device)
    return _reduce(_kd_torch(s, t, temp, y, alpha), m, reduction)


def _as_tensor(x: Any, name: str, dtype: Any, device: Any) -> Any:
    import torch

    if is_torch(x):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"`{name}` must be a real numeric tensor, got dtype {x.dtype}.")
        return x.to(dtype=dtype, device=device)
    return torch.as_tensor(_as_float64(x, name), dtype=dtype, device=device)


def _as_float64(x: Any, name: str) -> FloatArray:
    """Non-tensor logits as float64: the numpy loss is computed in double precision."""
    arr, _ = numeric_numpy(x, name)
    return arr.astype(np.float64)
