"""`Sampler`: an ordered chain of warpers, with logits, probabilities and draws."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

from thermoscope._validation import as_generator, check_integer, check_seed
from thermoscope.sampling import _fused
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._draw import draw, fixed_point_bits
from thermoscope.sampling._input import Rows, prepare
from thermoscope.sampling.warpers import (
    Epsilon,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    Warper,
)

Array = np.ndarray[Any, np.dtype[Any]]
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["LLAMA_CPP_ORDER", "TRANSFORMERS_ORDER", "Sampler"]

#: transformers' order (``GenerationMixin._get_logits_processor``): temperature
#: first, then top-k, top-p, min-p, typical, epsilon. Steps transformers lacks
#: sit next to their relatives: dynamic temperature with temperature, top-nσ last.
TRANSFORMERS_ORDER: tuple[str, ...] = (
    "temperature",
    "entropy_temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical",
    "epsilon",
    "top_n_sigma",
)

#: llama.cpp's default chain (``common_params_sampling.samplers``): top-nσ,
#: top-k, typical, top-p, min-p, then temperature (and dynatemp) last, so the
#: truncations see the untempered distribution. llama.cpp has no epsilon step;
#: it sits with the other truncations.
LLAMA_CPP_ORDER: tuple[str, ...] = (
    "top_n_sigma",
    "top_k",
    "typical",
    "top_p",
    "min_p",
    "epsilon",
    "temperature",
    "entropy_temperature",
)


def _limit_overflow(method: F) -> F:
    """Run ``method`` with numpy's overflow warnings off.

    Differences ``z - max`` below the float range come out as -inf: weight 0,
    the exact limit (logits spanning more than ~1.8e308), not a problem to warn
    about. A fresh ``errstate`` per call keeps this safe across threads.
    """

    @functools.wraps(method)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore"):
            return method(*args, **kwargs)

    return cast(F, quiet)


_PLAN_CACHE = 64  # batch shapes whose fused plan a Sampler remembers

_NAMED_ORDERS = {"transformers": TRANSFORMERS_ORDER, "llama.cpp": LLAMA_CPP_ORDER}


def _order_key(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, type) and issubclass(item, Warper):
        return item.name
    raise TypeError(f"`order` entries must be warper classes or names, got {item!r}.")


def _arrange(warpers: tuple[Warper, ...], order: str | Sequence[Any] | None) -> tuple[Warper, ...]:
    if order == "as_given":
        return warpers
    if order is None:
        order = "transformers"
    if isinstance(order, str):
        if order not in _NAMED_ORDERS:
            raise ValueError(
                "`order` must be 'transformers', 'llama.cpp', 'as_given' or a sequence of "
                f"warper classes or names, got {order!r}."
            )
        names: Sequence[str] = _NAMED_ORDERS[order]
    else:
        names = [_order_key(item) for item in order]
    rank = {name: i for i, name in enumerate(names)}
    missing = sorted({w.name for w in warpers} - rank.keys())
    if missing:
        raise ValueError(
            f"`order` must mention every warper in the chain, got no place for {missing}."
        )
    # sorted() is stable: warpers of the same kind keep the order they were given in.
    return tuple(sorted(warpers, key=lambda w: rank[w.name]))


class Sampler:
    """An ordered chain of warpers: warped logits, probabilities and seeded draws.

    Parameters
    ----------
    warpers : iterable of Warper
        The steps, e.g. ``[Temperature(0.7), TopK(50), TopP(0.9)]``.
    order : {"transformers", "llama.cpp", "as_given"} or sequence, optional
        How the steps are ordered before they run.

        - ``"transformers"`` (default): :data:`TRANSFORMERS_ORDER` —
          temperature, entropy temperature, top-k, top-p, min-p, typical,
          epsilon, top-nσ. Truncation sees the tempered distribution.
        - ``"llama.cpp"``: :data:`LLAMA_CPP_ORDER` — top-nσ, top-k, typical,
          top-p, min-p, epsilon, then temperature and entropy temperature:
          truncation sees the untempered distribution.
        - ``"as_given"``: the order of ``warpers``.
        - a sequence of warper classes or names (``["top_k", Temperature]``)
          naming every kind present.

        Warpers of the same kind keep their relative order.

    Notes
    -----
    Methods accept (V,) or (..., V) logits as numpy arrays, lists or torch
    tensors. ``logits`` and ``probs`` return the input's kind (torch in,
    torch out, same dtype and device); ``sample`` returns int64 indices of
    that kind.

    When the chain is made of :class:`Temperature`, :class:`TopK`,
    :class:`TopP` and :class:`MinP` only (finite, positive temperatures and
    ``min_tokens_to_keep=1`` for top-p / min-p), a fused path is used that
    never sorts the vocabulary; it keeps the same tokens and the same
    probabilities as the plain chain and draws the same tokens from the
    same seed (see :mod:`thermoscope.sampling._fused`).

    Examples
    --------
    >>> import numpy as np
    >>> s = Sampler([TopP(0.9), Temperature(0.5), TopK(2)])
    >>> [type(w).__name__ for w in s.warpers]
    ['Temperature', 'TopK', 'TopP']
    >>> z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    >>> s.probs(z).round(4)
    array([0.7353, 0.2647, 0.    , 0.    ])
    >>> s.sample(z, n=5, seed=0)
    array([0, 0, 0, 0, 1])
    """

    __slots__ = ("_plans", "_warpers")

    def __init__(self, warpers: Iterable[Warper] = (), order: str | Sequence[Any] | None = None):
        items = tuple(warpers)
        for w in items:
            if not isinstance(w, Warper):
                raise TypeError(f"`warpers` must contain Warper instances, got {w!r}.")
        self._warpers = _arrange(items, order)
        # Fused plan per batch shape: planning only validates the (immutable)
        # warpers' parameters against the batch shape, so its answer never
        # changes for a shape, and generation calls with the same shape each step.
        self._plans: dict[tuple[int, ...], _fused.Plan | None] = {}

    @property
    def warpers(self) -> tuple[Warper, ...]:
        """The steps, in the order they run."""
        return self._warpers

    def __repr__(self) -> str:
        return f"Sampler({list(self._warpers)!r}, order='as_given')"

    @classmethod
    def greedy(cls) -> Sampler:
        """Always the most likely token (ties: uniform among them): ``Temperature(0)``.

        Examples
        --------
        >>> Sampler.greedy().sample([0.1, 2.0, 1.0], n=3, seed=1)
        array([1, 1, 1])
        """
        return cls([Temperature(0.0)])

    @classmethod
    def from_options(
        cls,
        temperature: float | Array | None = 1.0,
        top_k: int | Array | None = None,
        top_p: float | Array | None = None,
        min_p: float | Array | None = None,
        typical_p: float | Array | None = None,
        epsilon: float | Array | None = None,
        top_n_sigma: float | Array | None = None,
        min_tokens_to_keep: int = 1,
        order: str | Sequence[Any] | None = None,
    ) -> Sampler:
        """Build a sampler from generation-style options; ``None`` leaves a step out.

        ``temperature=1.0`` and ``top_k=0`` leave their step out, as in
        transformers' ``generate``; every other value builds the step (and is
        validated by it).

        Examples
        --------
        >>> s = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
        >>> [w.name for w in s.warpers]
        ['temperature', 'top_k', 'top_p']
        """
        steps: list[Warper] = []
        if temperature is not None and not (np.ndim(temperature) == 0 and temperature == 1.0):
            steps.append(Temperature(temperature))
        if top_k is not None and not (np.ndim(top_k) == 0 and top_k == 0):
            steps.append(TopK(top_k, min_tokens_to_keep=min_tokens_to_keep))
        if top_p is not None:
            steps.append(TopP(top_p, min_tokens_to_keep=min_tokens_to_keep))
        if min_p is not None:
            steps.append(MinP(min_p, min_tokens_to_keep=min_tokens_to_keep))
        if typical_p is not None:
            steps.append(Typical(typical_p, min_tokens_to_keep=min_tokens_to_keep))
        if epsilon is not None:
            steps.append(Epsilon(epsilon, min_tokens_to_keep=min_tokens_to_keep))
        if top_n_sigma is not None:
            steps.append(TopNSigma(top_n_sigma))
        return cls(steps, order=order)

    # -- computing -----------------------------------------------------------

    def _plan(self, rows: Rows) -> _fused.Plan | None:
        shape = rows.batch_shape
        try:
            return self._plans[shape]
        except KeyError:
            if len(self._plans) >= _PLAN_CACHE:
                self._plans.clear()  # many batch shapes: keep the cache small
            made = self._plans[shape] = _fused.plan(self._warpers, rows)
            return made

    def _chain(self, rows: Rows) -> Array:
        z = rows.z
        for w in self._warpers:
            z = w.apply(z, rows.batch_shape)
        return z if z is not rows.z else z.copy()

    @_limit_overflow
    def logits(self, x: Any) -> Any:
        """Warped logits, ``-inf`` for removed tokens, same shape and kind as ``x``.

        Examples
        --------
        >>> Sampler([TopK(1)]).logits([[1.0, 2.0], [3.0, 0.0]])
        array([[-inf,   2.],
               [  3., -inf]])
        """
        rows = prepare(x)
        plan = self._plan(rows)
        if plan is not None:
            return rows.restore(_fused.run(plan, rows).dense_logits())
        return rows.restore(self._chain(rows))

    @_limit_overflow
    def probs(self, x: Any) -> Any:
        """Sampling distribution: softmax of the warped logits (removed tokens exactly 0).

        Examples
        --------
        >>> Sampler([Temperature(0.0)]).probs([1.0, 3.0, 3.0])
        array([0. , 0.5, 0.5])
        """
        rows = prepare(x)
        plan = self._plan(rows)
        if plan is not None:
            return rows.restore(_fused.run(plan, rows).dense_probs())
        return rows.restore(K.softmax_rows(self._chain(rows)))

    @_limit_overflow
    def sample(
        self,
        x: Any,
        n: int = 1,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> Any:
        """Draw ``n`` token indices per row, with replacement.

        Parameters
        ----------
        x : array_like or torch.Tensor, shape (V,) or (..., V)
        n : int, default 1
            Draws per row, >= 1.
        seed : int, optional
            Seed for a fresh ``numpy.random.default_rng(seed)``.
        rng : numpy.random.Generator or int, optional
            Generator to draw from (advanced by the call), or an integer seed,
            as everywhere in thermoscope (``rl``, ``recommend``). Give at most
            one of ``seed`` and ``rng``; with neither, fresh OS entropy is used.

        Returns
        -------
        ndarray or torch.Tensor of int64, shape (..., n)

        Notes
        -----
        One uniform number per draw (``rng.random((B, n))``) is mapped through
        the inverse CDF of the kept tokens in ascending token-id order, so the
        same seed gives the same tokens on the plain and the fused path.

        Examples
        --------
        >>> s = Sampler([TopK(2)])
        >>> s.sample([[0.0, 5.0, 4.0], [9.0, 0.0, 1.0]], n=2, seed=3).shape
        (2, 2)
        """
        count = check_integer(n, "n")
        if count.ndim != 0:
            raise TypeError(f"`n` must be a single integer >= 1, got shape {count.shape}.")
        gen = _generator(seed, rng)
        rows = prepare(x)
        batch, vocab = rows.z.shape
        u = gen.random((batch, int(count)))
        bits = fixed_point_bits(batch, vocab)
        plan = self._plan(rows)
        if plan is not None:
            picked = _fused.run(plan, rows).sample(u, bits)
        else:
            weights, _ = K.row_weights(self._chain(rows))
            picked = draw(weights, u, bits)
        return rows.restore(picked.astype(np.int64, copy=False))


def _generator(seed: Any, rng: Any) -> np.random.Generator:
    if seed is not None and rng is not None:
        raise ValueError("`seed` and `rng` must not both be given; pass one of them.")
    if seed is not None:
        return np.random.default_rng(check_seed(seed))
    # The library's one rule for `rng`: a Generator (advanced), an int seed, or None.
    return as_generator(rng)
