"""Logits warpers: small immutable steps that map (..., V) logits to logits.

Each warper validates its parameters once, when it is built, and returns a
new array in which removed tokens are ``-inf``; the input is never modified.
Parameters are scalars or arrays with one value per row (shape ``(B,)`` for
``(B, V)`` logits, in general the logits' shape without the last axis).

Tie policy
----------
Truncation is a threshold on the value of each token: every token tied with
the last one kept is kept too, so the result never depends on how a sort
orders equal values. transformers keeps an arbitrary subset of such ties
(whatever ``torch.sort`` or ``torch.topk`` returns first); away from ties both
libraries keep exactly the same tokens.

Every truncating warper keeps at least ``min_tokens_to_keep`` tokens (the most
likely ones, plus their ties) and caps ``k`` at the vocabulary size.

Array libraries
---------------
numpy input is warped with numpy; a torch tensor with torch operations on its
device (CPU, CUDA, ...), returned as a tensor of its dtype, with no host copy.
Per-row parameters are moved to the device once per call. The two libraries
keep the same tokens and agree to float rounding (a cut that falls exactly on
a rounding tie of a row sum may differ).

Examples
--------
>>> import numpy as np
>>> from thermoscope.sampling import TopK, Temperature
>>> z = np.array([1.0, 3.0, 2.0, 3.0])
>>> TopK(1)(z)  # the two tokens tied at the top are both kept
array([-inf,   3., -inf,   3.])
>>> Temperature(0.5)(z)
array([2., 6., 4., 6.])
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, overload

import numpy as np
import numpy.typing as npt

from thermoscope._backend import is_torch
from thermoscope._temperature import divide
from thermoscope._typing import Array, FloatArray
from thermoscope._validation import check_fraction, check_integer, check_temperature
from thermoscope.sampling import _kernels
from thermoscope.sampling._context import Context, as_history
from thermoscope.sampling._input import on_device, prepare, rows_param
from thermoscope.sampling._seeds import randomness

if TYPE_CHECKING:
    import torch

__all__ = [
    "EntropyTemperature",
    "Epsilon",
    "HistoryWarper",
    "MinP",
    "Temperature",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "Warper",
]


def _freeze(arr: Array) -> float | int | Array:
    """A validated parameter as a plain number, or a read-only array copy."""
    if arr.ndim == 0:
        number: float | int = arr.tolist()  # a Python number
        return number
    out = np.array(arr, copy=True)
    out.flags.writeable = False
    return out


def _kernels_for(z: Any) -> Any:
    """The kernel module of ``z``'s library: numpy's, or torch's (imported on first use)."""
    if is_torch(z):
        from thermoscope.sampling import _kernels_torch

        return _kernels_torch
    return _kernels


def _min_keep(value: Any) -> int:
    arr = check_integer(value, "min_tokens_to_keep")
    if arr.ndim != 0:
        raise TypeError(
            f"`min_tokens_to_keep` must be a single integer >= 1, got shape {arr.shape}."
        )
    return int(arr)


class Warper(abc.ABC):
    """Base class: ``warper(logits)`` validates, applies :meth:`apply` row-wise, converts back.

    Subclasses implement :meth:`apply` on clean ``(B, V)`` rows; the
    :class:`~thermoscope.sampling.Sampler` calls it directly so a chain
    validates its input once.

    Examples
    --------
    >>> from thermoscope.sampling import MinP
    >>> isinstance(MinP(0.1), Warper)
    True
    """

    #: Short name used by ``Sampler(order=[...])`` and in the documented orders.
    name: ClassVar[str]
    #: The stage reads each row's token history (``history=``): penalties, DRY, ...
    needs_history: ClassVar[bool] = False
    #: The stage's result on a row depends only on the row's finite values (not on
    #: token ids, nor on how many -inf entries the row has), so the fused path may
    #: run it on its compact list of kept candidates after the first cut.
    on_candidates: ClassVar[bool] = False
    #: The stage must be the chain's last (adaptive-p: it shapes the final draw).
    must_be_last: ClassVar[bool] = False
    #: The stage keeps per-row state that each draw updates (:meth:`observe`).
    stateful: ClassVar[bool] = False

    @overload
    def __call__(
        self,
        logits: torch.Tensor,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> torch.Tensor: ...
    @overload
    def __call__(
        self,
        logits: npt.ArrayLike,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> FloatArray: ...
    def __call__(
        self,
        logits: Any,
        *,
        history: Any = None,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
    ) -> Any:
        """Warp ``logits`` of shape (..., V); numpy, list or torch in, same kind out.

        ``history`` (each row's token ids so far) is needed by history-aware
        stages; ``seed`` / ``rng`` / ``step`` by random ones (XTC), as for
        :meth:`Sampler.sample`.

        Examples
        --------
        >>> MinP(0.5)([[0.0, -1.0, -2.0]])
        array([[  0., -inf, -inf]])
        """
        rows = prepare(logits)
        ctx = Context(
            rows.batch_shape,
            None if history is None else as_history(history, rows),
            randomness(rows, seed, rng, step, required=False),
        )
        if rows.torch:
            import torch

            with torch.no_grad():
                return rows.restore(self.apply_in(rows.z, ctx))
        # z - max below the float range is -inf (weight 0, the exact limit): no warning.
        with np.errstate(over="ignore"):
            return rows.restore(self.apply_in(rows.z, ctx))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        """Warp validated rows ``z`` (B, V) with this call's :class:`Context`.

        The chain calls this; the default is :meth:`apply`, for stages that
        need nothing but the logits.

        Examples
        --------
        >>> TopK(1).apply_in(np.array([[1.0, 2.0]]), Context((1,)))
        array([[-inf,   2.]])
        """
        return self.apply(z, ctx.batch_shape)

    def observe(self, tokens: Any) -> None:  # noqa: B027 (a hook: stateless stages keep it)
        """Update per-row state with the drawn ``tokens`` (B,); stateless stages do nothing.

        Examples
        --------
        >>> TopK(1).observe(np.array([0]))  # nothing to update
        """

    @abc.abstractmethod
    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        """Warp validated rows ``z`` of shape (B, V); ``batch_shape`` sizes per-row parameters.

        ``z`` is a numpy array or a torch tensor; the result is of the same kind.

        Examples
        --------
        >>> TopK(1).apply(np.array([[1.0, 2.0], [4.0, 3.0]]), (2,))
        array([[-inf,   2.],
               [  4., -inf]])
        """


class HistoryWarper(Warper):
    """Base of the stages that read each row's token history (penalties, DRY, ...).

    Subclasses implement :meth:`apply_in` and read ``ctx.require_history(...)``;
    :meth:`apply` without a history raises a ValueError naming ``history``.

    Examples
    --------
    >>> issubclass(HistoryWarper, Warper)
    True
    """

    needs_history: ClassVar[bool] = True

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return self.apply_in(z, Context(batch_shape))

    @abc.abstractmethod
    def apply_in(self, z: Any, ctx: Context) -> Any:
        """Warp rows ``z`` (B, V) given ``ctx.history``.

        Examples
        --------
        >>> HistoryWarper.apply_in.__isabstractmethod__
        True
        """


@dataclass(frozen=True, eq=False)
class Temperature(Warper):
    """Divide logits by a temperature: ``softmax(z / t)``.

    Parameters
    ----------
    temperature : float or array_like
        ``T >= 0``, one value or one per row. Typical values: 0.2-0.5 for
        code, 0.7-1.0 for chat, 1.0-1.5 for creative text. ``T = 0`` is the
        greedy limit (uniform over the maximal logits, all others removed),
        ``T = inf`` is uniform over the finite logits.

    Notes
    -----
    Unlike transformers' ``TemperatureLogitsWarper``, ``T = 0`` is allowed and
    means greedy instead of raising. Each warper's parameter has the name of
    its ``Sampler.from_options`` option, so an error names the argument typed
    either way.

    Examples
    --------
    >>> import numpy as np
    >>> Temperature(2.0)(np.array([2.0, 0.0, -np.inf]))
    array([  1.,   0., -inf])
    >>> Temperature(0.0)(np.array([1.0, 3.0, 3.0]))
    array([-inf,   0.,   0.])
    """

    temperature: float | Array
    name: ClassVar[str] = "temperature"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        t = _freeze(check_temperature(self.temperature, "temperature"))
        object.__setattr__(self, "temperature", t)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return divide(z, rows_param(self.temperature, batch_shape, "temperature"))


@dataclass(frozen=True, eq=False)
class TopK(Warper):
    """Keep the ``k`` largest logits (and every token tied with the k-th).

    Parameters
    ----------
    top_k : int or array_like of int
        Number of tokens to keep, >= 1; capped at the vocabulary size.
        Typical values: 5-100 (transformers' default is 50).
    min_tokens_to_keep : int, default 1
        ``k`` is raised to at least this value, as in transformers.

    Examples
    --------
    >>> import numpy as np
    >>> TopK(2)(np.array([0.5, 2.0, 1.0, -1.0]))
    array([-inf,   2.,   1., -inf])
    """

    top_k: int | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "top_k"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        object.__setattr__(self, "top_k", _freeze(check_integer(self.top_k, "top_k")))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        k = np.maximum(rows_param(self.top_k, batch_shape, "top_k"), self.min_tokens_to_keep)
        return K.apply_threshold(z, K.kth_largest(z, k))


@dataclass(frozen=True, eq=False)
class TopP(Warper):
    """Nucleus sampling: keep the most likely tokens until their mass reaches ``p``.

    A token is kept when the probability mass of the tokens strictly more
    likely than it is below ``top_p``; ties with the last kept token are kept.

    Parameters
    ----------
    top_p : float or array_like
        Nucleus mass in (0, 1]. Typical values 0.8-0.95; ``top_p = 1`` keeps
        every finite token.
    min_tokens_to_keep : int, default 1
        At least this many of the most likely tokens (and their ties) are kept.

    Notes
    -----
    transformers removes a token when the ascending cumulative mass up to and
    including it is ``<= 1 - p``; that is the same set away from ties. With
    ``top_p = 1`` transformers also drops tokens whose float32 probability
    underflows to 0; thermoscope keeps them.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    >>> np.isfinite(TopP(0.7)(z))
    array([ True,  True, False, False])
    """

    top_p: float | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "top_p"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        object.__setattr__(self, "top_p", _freeze(check_fraction(self.top_p, "top_p")))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        thr = K.top_p_threshold(z, rows_param(self.top_p, batch_shape, "top_p"))
        return K.apply_threshold(z, K.floor_threshold(z, thr, self.min_tokens_to_keep))


@dataclass(frozen=True, eq=False)
class MinP(Warper):
    """Keep tokens at least ``min_p`` times as likely as the most likely token.

    Parameters
    ----------
    min_p : float or array_like
        In [0, 1]. Typical values 0.01-0.2, about as selective as ``top_p``
        0.99-0.8; ``min_p = 0`` keeps every token.
    min_tokens_to_keep : int, default 1
        At least this many of the most likely tokens (and their ties) are kept.

    Notes
    -----
    Decided in log space (``z >= max(z) + log(min_p)``), the same condition as
    transformers' ``probs >= min_p * max(probs)``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.6, 0.3, 0.08, 0.02]))
    >>> np.isfinite(MinP(0.1)(z))
    array([ True,  True,  True, False])
    """

    min_p: float | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "min_p"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        p = _freeze(check_fraction(self.min_p, "min_p", low_open=False))
        object.__setattr__(self, "min_p", p)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        thr = K.min_p_threshold(z, rows_param(self.min_p, batch_shape, "min_p"))
        return K.apply_threshold(z, K.floor_threshold(z, thr, self.min_tokens_to_keep))


@dataclass(frozen=True, eq=False)
class Typical(Warper):
    """Locally typical sampling: keep tokens whose surprise is close to the entropy.

    Tokens are ranked by ``|-log p_i - H|`` and the smallest prefix of that
    ranking with mass >= ``typical_p`` is kept (Meister et al., 2022), as in
    transformers' ``TypicalLogitsWarper``. The most likely token can be removed.

    Parameters
    ----------
    typical_p : float or array_like
        Typical mass in (0, 1]; typical values 0.2-0.95.
    min_tokens_to_keep : int, default 1
        At least this many of the most *typical* tokens are kept (as in
        transformers).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.4, 0.2, 0.2, 0.2]))
    >>> np.isfinite(Typical(0.5)(z))
    array([False,  True,  True,  True])
    """

    typical_p: float | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "typical"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        p = _freeze(check_fraction(self.typical_p, "typical_p"))
        object.__setattr__(self, "typical_p", p)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        mass = rows_param(self.typical_p, batch_shape, "typical_p")
        return K.apply_mask(z, K.typical_mask(z, mass, self.min_tokens_to_keep))


@dataclass(frozen=True, eq=False)
class Epsilon(Warper):
    """Epsilon sampling: keep tokens with probability >= ``epsilon`` (Hewitt et al., 2022).

    Parameters
    ----------
    epsilon : float or array_like
        In (0, 1]; the paper suggests 3e-4 to 9e-4.
    min_tokens_to_keep : int, default 1
        If fewer tokens pass, the most likely ones (and ties) are kept.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([0.6, 0.3, 0.0999, 0.0001]))
    >>> np.isfinite(Epsilon(0.001)(z))
    array([ True,  True,  True, False])
    """

    epsilon: float | Array
    min_tokens_to_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "epsilon"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_tokens_to_keep", _min_keep(self.min_tokens_to_keep))
        object.__setattr__(self, "epsilon", _freeze(check_fraction(self.epsilon, "epsilon")))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        keep = K.epsilon_mask(z, rows_param(self.epsilon, batch_shape, "epsilon"))
        none = on_device(np.full(z.shape[0], np.inf), z)
        floor = K.floor_threshold(z, none, self.min_tokens_to_keep)
        return K.apply_mask(z, keep | (z >= floor[:, None]))


@dataclass(frozen=True, eq=False)
class TopNSigma(Warper):
    """Top-nσ (Tang et al., 2024): keep logits within ``top_n_sigma`` std devs of the max.

    Keeps ``z >= max(z) - top_n_sigma * std(z)``, the mean and (population) standard
    deviation taken over the finite logits, as llama.cpp's ``top_n_sigma``.
    The kept set does not depend on the temperature.

    Parameters
    ----------
    top_n_sigma : float or array_like
        >= 0; typical values 0.5-2 (the paper uses 1). ``0`` keeps only the
        maximal logits; ``inf`` keeps every finite logit.

    Notes
    -----
    llama.cpp treats ``n <= 0`` as "disabled"; here ``0`` is the greedy
    limit and negative values are an error. Computed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> TopNSigma(1.0)(np.array([3.0, 2.5, 0.0, -1.0]))
    array([ 3. ,  2.5, -inf, -inf])
    """

    top_n_sigma: float | Array
    name: ClassVar[str] = "top_n_sigma"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        n = _freeze(check_temperature(self.top_n_sigma, "top_n_sigma"))
        object.__setattr__(self, "top_n_sigma", n)

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        K = _kernels_for(z)
        n = rows_param(self.top_n_sigma, batch_shape, "top_n_sigma")
        return K.apply_threshold(z, K.top_n_sigma_threshold(z, n))


@dataclass(frozen=True, eq=False)
class EntropyTemperature(Warper):
    """Entropy-based dynamic temperature (llama.cpp's "dynatemp", ``temp_ext``).

    Each row gets ``T = min_t + (max_t - min_t) * (H / log n) ** exponent``
    where ``H`` is the entropy of ``softmax(z)`` and ``n`` the number of
    candidates (see ``count``; ``H / log n`` is clipped to [0, 1]); then
    ``z / T``. A confident (low-entropy) row is sampled cooler, an uncertain
    one hotter.

    Parameters
    ----------
    min_t, max_t : float or array_like
        0 <= min_t <= max_t. llama.cpp's ``--temp 0.8 --dynatemp-range 0.5``
        is ``min_t=0.3, max_t=1.3``.
    exponent : float or array_like, default 1.0
        >= 0; llama.cpp's ``--dynatemp-exp`` (default 1).
    count : {"finite", "row"} or int or array_like of int, default "finite"
        The ``n`` of ``log n``. ``"finite"``: the row's finite logits (the
        tokens still in play). ``"row"``: the row's length, -inf entries
        included: llama.cpp's ``temp_ext`` counts every candidate it still
        lists, and stages that remove tokens by setting them to -inf (top-nσ,
        a -inf logit bias, temperature 0) leave them listed, so after them
        ``"row"`` is llama.cpp's count as long as no stage that shrinks its
        list (top-k, top-p, min-p, typical, XTC) ran before. An integer >= 1
        (or one per row) gives llama.cpp's count explicitly, e.g.
        ``min(k, V)`` after a top-k that kept -inf candidates.

    Notes
    -----
    llama.cpp computes in float32 over its current candidate list; here in
    float64. A row with ``n <= 1`` is returned unchanged, as in llama.cpp,
    and ``T = 0`` (``min_t = 0`` and zero entropy) is the greedy limit.
    ``count="row"`` reads the width of the rows this stage is given, which
    is the vocabulary: the stage never runs on the fused path's compact
    candidate list (``on_candidates`` is False).

    Examples
    --------
    >>> import numpy as np
    >>> EntropyTemperature(0.5, 1.5)(np.array([[0.0, 0.0], [4.0, -np.inf]]))
    array([[  0.,   0.],
           [  4., -inf]])

    llama.cpp's dynatemp after top-nσ: the masked token 1 still counts.

    >>> from thermoscope.sampling import Sampler, TopNSigma
    >>> z = np.array([5.4, 1.1, 4.9])
    >>> Sampler([TopNSigma(0.5), EntropyTemperature(0.3, 1.3)], order="as_given").probs(z)
    array([0.5982, 0.    , 0.4018])
    >>> Sampler([TopNSigma(0.5), EntropyTemperature(0.3, 1.3, count="row")],
    ...         order="as_given").probs(z)
    array([0.6349, 0.    , 0.3651])
    """

    min_t: float | Array
    max_t: float | Array
    exponent: float | Array = field(default=1.0, kw_only=True)
    count: str | int | Array = field(default="finite", kw_only=True)
    name: ClassVar[str] = "entropy_temperature"

    def __post_init__(self) -> None:
        lo = check_temperature(self.min_t, "min_t")
        hi = check_temperature(self.max_t, "max_t")
        if lo.shape != hi.shape and lo.ndim and hi.ndim:
            raise ValueError(
                f"`max_t` must have the shape of `min_t`, {lo.shape}, got shape {hi.shape}."
            )
        if np.any(hi < lo):
            raise ValueError(
                f"`max_t` must be >= `min_t`, got max_t={hi.tolist()} < min_t={lo.tolist()}."
            )
        expo = check_temperature(self.exponent, "exponent")
        if not np.all(np.isfinite(expo)):
            raise ValueError(f"`exponent` must be a finite number >= 0, got {expo.tolist()}.")
        object.__setattr__(self, "min_t", _freeze(lo))
        object.__setattr__(self, "max_t", _freeze(hi))
        object.__setattr__(self, "exponent", _freeze(expo))
        if isinstance(self.count, str):
            if self.count not in ("finite", "row"):
                raise ValueError(
                    f"`count` must be 'finite', 'row' or an integer >= 1, got {self.count!r}."
                )
        else:
            object.__setattr__(self, "count", _freeze(check_integer(self.count, "count")))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        if isinstance(self.count, str):
            rows = int(z.shape[0])
            count = None if self.count == "finite" else np.full(rows, int(z.shape[-1]))
        else:
            count = rows_param(self.count, batch_shape, "count")
        t = _kernels_for(z).entropy_temperature(
            z,
            rows_param(self.min_t, batch_shape, "min_t"),
            rows_param(self.max_t, batch_shape, "max_t"),
            rows_param(self.exponent, batch_shape, "exponent"),
            count,
        )
        return divide(z, t)
