"""`Sampler`: an ordered chain of warpers, with logits, probabilities and draws."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from thermoscope._backend import is_torch
from thermoscope._temperature import row_weights, softmax_rows
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope._validation import check_integer
from thermoscope.sampling import _fused
from thermoscope.sampling._context import Context, as_history
from thermoscope.sampling._input import Rows, prepare
from thermoscope.sampling._logprobs import MODES, SampleResult, gather, log_shift, top_entries
from thermoscope.sampling._options import build_steps
from thermoscope.sampling._order import LLAMA_CPP_ORDER, TRANSFORMERS_ORDER, arrange
from thermoscope.sampling._rowdraw import bits_for, draw_rows
from thermoscope.sampling._seeds import Randomness, check_count, randomness
from thermoscope.sampling.trace import Trace, trace_stages
from thermoscope.sampling.warpers import (
    Temperature,
    Warper,
)

if TYPE_CHECKING:
    import torch

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["LLAMA_CPP_ORDER", "TRANSFORMERS_ORDER", "Sampler"]


def _native(method: F) -> F:
    """Run ``method`` quietly in the input's library.

    numpy: overflow warnings off. Differences ``z - max`` below the float
    range come out as -inf: weight 0, the exact limit (logits spanning more
    than ~1.8e308), not a problem to warn about. A fresh ``errstate`` per
    call keeps this safe across threads. torch: no autograd graph (sampling
    is not differentiable, and the warped values are new tensors).
    """

    @functools.wraps(method)
    def run(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        if is_torch(x):
            import torch

            with torch.no_grad():
                return method(self, x, *args, **kwargs)
        with np.errstate(over="ignore"):
            return method(self, x, *args, **kwargs)

    return cast(F, run)


class _Dense:
    """The plain chain's result: warped logits over the whole vocabulary."""

    __slots__ = ("vals",)

    def __init__(self, vals: Any):
        self.vals = vals

    def dense_logits(self) -> Any:
        return self.vals

    def dense_probs(self) -> Any:
        return softmax_rows(self.vals)

    def masked_vals(self) -> Any:
        return self.vals

    def token_ids(self, pos: Any) -> Any:
        return pos

    def positions(self, u: Any, bits: int) -> Any:
        return draw_rows(row_weights(self.vals)[0], u, bits)


_PLAN_CACHE = 64  # batch shapes whose fused plan a Sampler remembers


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
    tensors. numpy input is computed with numpy; a tensor with torch
    operations on its device (CPU, CUDA, ...), with no copy to the host.
    ``logits`` and ``probs`` return the input's kind (torch in, torch out,
    same dtype and device); ``sample`` returns int64 indices of that kind.

    When the chain is made of :class:`Temperature`, :class:`TopK`,
    :class:`TopP` and :class:`MinP` only (finite, positive temperatures and
    ``min_tokens_to_keep=1`` for top-p / min-p), a fused path is used that
    never sorts the vocabulary; it keeps the same tokens and the same
    probabilities as the plain chain and draws the same tokens from the
    same seed (see :mod:`thermoscope.sampling._fused` and
    :mod:`thermoscope.sampling._fused_torch`).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.sampling import TopK, TopP
    >>> s = Sampler([TopP(0.9), Temperature(0.5), TopK(2)])
    >>> [type(w).__name__ for w in s.warpers]
    ['Temperature', 'TopK', 'TopP']
    >>> z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    >>> s.probs(z).round(4)
    array([0.7353, 0.2647, 0.    , 0.    ])
    >>> s.sample(z, n=5, seed=0)
    array([0, 1, 1, 0, 0])
    """

    __slots__ = ("_lead", "_plans", "_warpers")

    def __init__(self, warpers: Iterable[Warper] = (), *, order: str | Sequence[Any] | None = None):
        if warpers is None or isinstance(warpers, (str, bytes)) or not hasattr(warpers, "__iter__"):
            raise TypeError(
                f"`warpers` must be an iterable of Warper instances (e.g. [TopK(50)]), "
                f"got {warpers!r}."
            )
        items = tuple(warpers)
        for w in items:
            if not isinstance(w, Warper):
                raise TypeError(f"`warpers` must contain Warper instances, got {w!r}.")
        self._warpers = arrange(items, order)
        for w in self._warpers[:-1]:
            if w.must_be_last:
                raise ValueError(
                    f"`warpers` must end with {type(w).__name__}, which shapes the final draw "
                    f"and must be the last stage; got the order {[x.name for x in self._warpers]}."
                )
        # Fused plan per (library, batch shape): planning only validates the (immutable)
        # warpers' parameters against the batch shape, so its answer never
        # changes for a shape, and generation calls with the same shape each step.
        self._plans: dict[tuple[bool, tuple[int, ...], bool], _fused.Plan | None] = {}
        # Stages before the first fusable one (penalties, biases, DRY) run on the
        # whole vocabulary first; the fused path may then take the rest.
        self._lead = next(
            (i for i, w in enumerate(self._warpers) if isinstance(w, _FUSABLE)),
            len(self._warpers),
        )

    @property
    def warpers(self) -> tuple[Warper, ...]:
        """The steps, in the order they run.

        Examples
        --------
        >>> from thermoscope.sampling import TopK
        >>> [w.name for w in Sampler([TopK(5), Temperature(0.5)]).warpers]
        ['temperature', 'top_k']
        """
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
        *,
        temperature: float | Array | None = 1.0,
        top_k: int | Array | None = 0,
        top_p: float | Array | None = 1.0,
        min_p: float | Array | None = 0.0,
        typical_p: float | Array | None = 1.0,
        epsilon: float | Array | None = 0.0,
        top_n_sigma: float | Array | None = None,
        eta: float | Array | None = 0.0,
        top_h: float | Array | None = None,
        p_less: Any = None,
        repetition_penalty: float | Array | None = 1.0,
        frequency_penalty: float | Array | None = 0.0,
        presence_penalty: float | Array | None = 0.0,
        penalty_last_n: int | None = None,
        no_repeat_ngram_size: int | None = 0,
        logit_bias: Mapping[int, float] | None = None,
        sequence_bias: Mapping[tuple[int, ...], float] | None = None,
        dry_multiplier: float | Array | None = 0.0,
        dry_base: float | None = None,
        dry_allowed_length: int | None = None,
        dry_last_n: int | None = None,
        dry_sequence_breakers: Any = None,
        tokenizer: Any = None,
        xtc_probability: float | Array | None = 0.0,
        xtc_threshold: float | Array | None = None,
        adaptive_target: float | None = None,
        adaptive_decay: float | None = None,
        min_tokens_to_keep: int = 1,
        order: str | Sequence[Any] | None = None,
    ) -> Sampler:
        """Build a sampler from generation-style options: the one home of "off".

        Each option builds its step, which validates it, unless the option is
        "off": ``None`` (not given) or a scalar equal to its neutral value,
        the value that keeps every token, as transformers' ``generate``, vLLM
        and llama.cpp treat them:

        ======================  =====================  =========================
        option                  off at                 step
        ======================  =====================  =========================
        temperature             1.0                    Temperature
        top_k                   0                      TopK
        top_p                   1.0                    TopP
        min_p                   0.0                    MinP
        typical_p               1.0                    Typical
        epsilon                 0.0                    Epsilon
        eta                     0.0                    Eta
        top_h                   None                   TopH
        p_less                  None                   PLess (True: defaults)
        top_n_sigma             None (0 is greedy)     TopNSigma
        repetition_penalty      1.0                    RepetitionPenalty
        frequency_penalty       0.0                    FrequencyPenalty
        presence_penalty        0.0                    PresencePenalty
        no_repeat_ngram_size    0                      NoRepeatNGram
        logit_bias              None                   LogitBias
        sequence_bias           None                   SequenceBias
        dry_multiplier          0.0                    DRY
        xtc_probability         0.0                    XTC
        adaptive_target         None                   AdaptiveP
        ======================  =====================  =========================

        ``penalty_last_n`` (the window of the three penalties), ``dry_base``,
        ``dry_allowed_length``, ``dry_last_n``, ``dry_sequence_breakers``,
        ``xtc_threshold`` (default 0.1) and ``adaptive_decay`` tune their
        step and build none by themselves. A per-row array always builds its
        step: rows with ``top_p = 1`` or ``min_p = 0`` keep every token,
        while ``top_k`` needs ``>= 1`` per row. Every interactive view (the
        CLI, the explorer, the notebook widgets,
        :func:`~thermoscope.sampling.summarize_sampling`) and the engine
        presets build their sampler here, so the same setting means the same
        chain everywhere.

        Parameters
        ----------
        temperature, top_k, top_p, min_p, typical_p, epsilon, top_n_sigma, eta, top_h, p_less
            Temperature and truncation steps: a scalar or one value per row.
        repetition_penalty, frequency_penalty, presence_penalty, no_repeat_ngram_size
            History-aware penalties (the calls then need ``history=``).
        penalty_last_n : int, optional
            The three penalties look at the last n tokens only (None: all).
        logit_bias, sequence_bias : mapping, optional
            ``{token id: bias}`` and ``{token id tuple: bias}``.
        dry_multiplier, dry_base, dry_allowed_length, dry_last_n, dry_sequence_breakers
            The DRY repetition penalty and its settings. Breakers are token-id
            sequences, or strings together with ``tokenizer``; without either,
            llama.cpp's default string breakers (``"\\n"``, ``":"``, ``'"'``,
            ``"*"``) are found in ``tokenizer``'s vocabulary when it is given,
            and DRY runs with no breakers when it is not.
        tokenizer : transformers tokenizer, optional
            Turns DRY's string breakers into token ids.
        xtc_probability, xtc_threshold
            XTC ("exclude top choices"); its coin needs ``seed=`` or ``rng=``.
        adaptive_target, adaptive_decay
            Adaptive-p (stateful; always the last stage).
        min_tokens_to_keep : int, default 1
            Passed to every truncating step that has it.
        order : str or sequence, optional
            As for :class:`Sampler`.

        Returns
        -------
        Sampler

        Examples
        --------
        >>> s = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
        >>> [w.name for w in s.warpers]
        ['temperature', 'top_k', 'top_p']
        >>> Sampler.from_options(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0).warpers
        ()
        """
        options = dict(locals())
        del options["cls"], options["order"]
        return cls(build_steps(options), order=order)

    # -- computing -----------------------------------------------------------

    def _plan(self, rows: Rows) -> _fused.Plan | None:
        key = (rows.torch, rows.batch_shape, _fused.host_rows(rows))
        try:
            made = self._plans[key]
        except KeyError:
            if len(self._plans) >= _PLAN_CACHE:
                self._plans.clear()  # many batch shapes: keep the cache small
            made = _fused.plan(self._warpers[self._lead :], rows)
            self._plans[key] = made
        return made

    def _chain(self, rows: Rows, ctx: Context, stages: tuple[Warper, ...] | None = None) -> Any:
        z = rows.z
        # A stage with ``apply_into`` (penalties, biases, DRY) returns a fresh
        # array from ``apply_in``; the next such stages write into it: one copy
        # of the logits per run of them.
        owned = False
        for w in self._warpers if stages is None else stages:
            into = getattr(w, "apply_into", None)
            if owned and into is not None:
                z = into(z, ctx)
            else:
                z = w.apply_in(z, ctx)
                owned = into is not None
        if z is rows.z:
            z = z.clone() if rows.torch else z.copy()
        return z

    def _warp(self, rows: Rows, ctx: Context) -> Any:
        """The chain's result on ``rows``: the fused path's kept tokens, or the plain chain's."""
        plan = self._plan(rows)
        if plan is None:
            # Temperatures alone: divided and exponentiated in one pass (numpy).
            tempered = _fused.tempered(self._warpers, rows)
            if tempered is not None:
                return tempered
            return _Dense(self._chain(rows, ctx))
        if self._lead:
            z = self._chain(rows, ctx, self._warpers[: self._lead])
            rows = Rows(z, rows.batch_shape, rows.back)
            _check_rows_left(rows, self._warpers[: self._lead])
        if not rows.torch and not _fused.tempers_safely(plan, rows):
            # A tiny temperature overflows z / T: the plain chain shifts first.
            return _Dense(self._chain(rows, ctx, self._warpers[self._lead :]))
        if rows.torch:
            from thermoscope.sampling import _fused_torch

            return _fused_torch.run(plan, rows, ctx)
        return _fused.run(plan, rows, ctx)

    def _context(self, rows: Rows, history: Any, source: Randomness | None) -> Context:
        if history is None:
            needing = [type(w).__name__ for w in self._warpers if w.needs_history]
            if needing:
                Context(rows.batch_shape).require_history(", ".join(needing))
            return Context(rows.batch_shape, None, source)
        return Context(rows.batch_shape, as_history(history, rows), source)

    def _prepared(
        self, x: Any, history: Any, seed: Any, rng: Any, step: Any
    ) -> tuple[Rows, Context]:
        rows = prepare(x)
        return rows, self._context(rows, history, randomness(rows, seed, rng, step, required=False))

    @overload
    def logits(
        self,
        x: torch.Tensor,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> torch.Tensor: ...
    @overload
    def logits(
        self,
        x: npt.ArrayLike,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> FloatArray: ...
    @_native
    def logits(
        self,
        x: Any,
        *,
        history: Any = None,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
    ) -> Any:
        """Warped logits, ``-inf`` for removed tokens, same shape and kind as ``x``.

        ``history`` gives history-aware stages (penalties, DRY, ...) each row's
        token ids so far: a (batch, length) integer array, or one sequence per
        row of any length. ``seed`` / ``rng`` / ``step`` seed the coins of
        random stages (XTC), as in :meth:`sample`.

        Examples
        --------
        >>> from thermoscope.sampling import TopK
        >>> Sampler([TopK(1)]).logits([[1.0, 2.0], [3.0, 0.0]])
        array([[-inf,   2.],
               [  3., -inf]])
        """
        rows, ctx = self._prepared(x, history, seed, rng, step)
        return rows.restore(self._warp(rows, ctx).dense_logits())

    @overload
    def probs(
        self,
        x: torch.Tensor,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> torch.Tensor: ...
    @overload
    def probs(
        self,
        x: npt.ArrayLike,
        *,
        history: Any = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
    ) -> FloatArray: ...
    @_native
    def probs(
        self,
        x: Any,
        *,
        history: Any = None,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
    ) -> Any:
        """Sampling distribution: softmax of the warped logits (removed tokens exactly 0).

        ``history``, ``seed``, ``rng`` and ``step`` as for :meth:`logits`.

        Examples
        --------
        >>> Sampler([Temperature(0.0)]).probs([1.0, 3.0, 3.0])
        array([0. , 0.5, 0.5])
        """
        rows, ctx = self._prepared(x, history, seed, rng, step)
        return rows.restore(self._warp(rows, ctx).dense_probs())

    def trace(
        self,
        x: Any,
        *,
        history: Any = None,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
        top: int = 5,
    ) -> Trace:
        """Explain the chain on one row: what each stage kept, removed and left.

        Parameters
        ----------
        x : array_like or torch.Tensor, shape (V,) or (1, V)
            One row of logits.
        history, seed, rng, step
            As for :meth:`logits`.
        top : int, default 5
            How many of each stage's most likely tokens to record.

        Returns
        -------
        Trace
            The input, then one :class:`~thermoscope.sampling.trace.StageTrace`
            per stage in the order they run; the last one's distribution is
            :meth:`probs`'s.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.log([0.65, 0.3, 0.05])
        >>> from thermoscope.sampling import TopP
        >>> s = Sampler([Temperature(0.5), TopP(0.8)])
        >>> [st.kept for st in s.trace(z).stages]
        [3, 3, 1]
        >>> bool(np.allclose(s.trace(z).final.probs, s.probs(z)))
        True
        """
        width = check_integer(top, "top", minimum=1)
        if width.ndim != 0:
            raise TypeError(f"`top` must be a single integer >= 1, got shape {width.shape}.")
        rows, ctx = self._prepared(x, history, seed, rng, step)
        if rows.z.shape[0] != 1:
            raise ValueError(
                "`x` must be one row of logits, shape (V,) or (1, V): a trace explains one "
                f"row, got batch shape {rows.batch_shape}."
            )
        if rows.torch:
            import torch

            with torch.no_grad():
                return trace_stages(self._warpers, rows.z, ctx, top=int(width))
        with np.errstate(over="ignore"):
            return trace_stages(self._warpers, rows.z, ctx, top=int(width))

    @overload
    def sample(
        self,
        x: torch.Tensor,
        *,
        n: int = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
        history: Any = ...,
    ) -> torch.Tensor: ...
    @overload
    def sample(
        self,
        x: npt.ArrayLike,
        *,
        n: int = ...,
        seed: Any = ...,
        rng: np.random.Generator | int | None = ...,
        step: Any = ...,
        history: Any = ...,
    ) -> IntArray: ...
    @_native
    def sample(
        self,
        x: Any,
        *,
        n: int = 1,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
        history: Any = None,
    ) -> Any:
        """Draw ``n`` token indices per row, with replacement.

        Parameters
        ----------
        x : array_like or torch.Tensor, shape (V,) or (..., V)
        n : int, default 1
            Draws per row, >= 1.
        seed : int or array_like or torch.Tensor of int, optional
            One integer in ``[0, 2**64)`` for every row, or one per row (the
            shape of ``x`` without its last axis): each request's own seed.
            Batch-invariant: a row's tokens depend only on its own logits,
            seed and ``step``, never on the other rows, their order or
            number, or the array library (see Notes).
        rng : numpy.random.Generator or int, optional
            Draw from this numpy Generator (advanced by the call) or a fresh
            one seeded with this integer, as everywhere in thermoscope (``rl``,
            ``recommend``). Its numbers are handed out across the rows in
            order, so a row's tokens depend on the batch; for torch input they
            are made on the host and moved to the device once. Give at most
            one of ``seed`` and ``rng``; with neither, fresh OS entropy is used
            (as ``rng=None``).
        step : int or array_like or torch.Tensor of int, default 0
            The decoding step, one for every row or one per row, >= 0: with
            the same seed, each step draws anew. Only with ``seed``.
        history : array_like or sequence of sequences, optional
            Each row's token ids so far, for history-aware stages: a (batch,
            length) integer array, or one sequence per row of any length.

        Returns
        -------
        ndarray or torch.Tensor of int64, shape (..., n)
            Of the input's kind; a tensor lives on the input's device.

        Notes
        -----
        One uniform number per draw is mapped through the inverse CDF of the
        kept tokens in ascending token-id order, with exact integer sums, so
        the plain and the fused path draw the same tokens. With ``seed`` the
        uniforms are counter-based (Philox4x32-10 keyed by the seed, counting
        ``(step, j)``; :mod:`thermoscope.sampling._counter`), computed on the
        logits' device, bit for bit the same in numpy and torch: draw ``j`` of
        a row depends on its seed, its step and ``j`` only. Rows with the same
        seed, step and logits draw the same tokens; give per-row seeds for
        independent rows. numpy and torch compute the kept tokens' weights
        with their own ``exp``, which may round the last bit differently, so
        for float32 logits a draw can differ between the two libraries when
        its uniform falls within that rounding of an interval edge (about 3
        draws in 100,000 over a whole 128k vocabulary, practically never
        after top-k / top-p / min-p or with float64 logits).

        Examples
        --------
        >>> from thermoscope.sampling import TopK
        >>> s = Sampler([TopK(2)])
        >>> s.sample([[0.0, 5.0, 4.0], [9.0, 0.0, 1.0]], n=2, seed=3).shape
        (2, 2)
        >>> z = [[0.0, 1.0, 0.5], [2.0, 0.0, 0.0]]
        >>> alone = s.sample(z[1], n=4, seed=7, step=2)
        >>> bool((s.sample(z, n=4, seed=[5, 7], step=2)[1] == alone).all())
        True
        """
        rows, ctx, u = self._drawing(x, n, seed, rng, step, history)
        result = self._warp(rows, ctx)
        picked = result.token_ids(result.positions(u, bits_for(rows.z.shape[1])))
        self._observe(picked)
        return rows.restore(picked)

    def _drawing(
        self, x: Any, n: Any, seed: Any, rng: Any, step: Any, history: Any
    ) -> tuple[Rows, Context, Any]:
        """Rows, context and (B, n) uniforms of one drawing call, validated."""
        count = check_count(n)
        if count != 1 and any(w.stateful for w in self._warpers):
            names = ", ".join(type(w).__name__ for w in self._warpers if w.stateful)
            raise ValueError(
                f"`n` must be 1 with a stateful stage ({names}): each draw updates its "
                f"state, got n={count}."
            )
        rows = prepare(x, check=False)
        source = randomness(rows, seed, rng, step)
        u = source.uniforms(count)
        return rows, self._context(rows, history, source), u

    def _observe(self, picked: Any) -> None:
        """Hand the drawn tokens (B, 1) to the stateful stages."""
        for w in self._warpers:
            if w.stateful:
                w.observe(picked[:, 0])

    @_native
    def sample_with_logprobs(
        self,
        x: Any,
        *,
        n: int = 1,
        seed: Any = None,
        rng: np.random.Generator | int | None = None,
        step: Any = 0,
        history: Any = None,
        mode: str = "processed_logprobs",
        top: int = 0,
    ) -> SampleResult:
        """Draw as :meth:`sample` does, and report the drawn tokens' log-probabilities.

        Parameters
        ----------
        x, n, seed, rng, step, history
            As for :meth:`sample`; the tokens are the ones it draws.
        mode : str, default "processed_logprobs"
            What to report, vLLM's four ``logprobs_mode`` values:

            - ``"raw_logprobs"``: ``log_softmax`` of ``x`` as given, before any warper;
            - ``"raw_logits"``: ``x`` as given;
            - ``"processed_logprobs"``: ``log_softmax`` of the warped logits,
              the distribution the tokens were drawn from (``-inf`` for
              removed tokens);
            - ``"processed_logits"``: the warped logits (:meth:`logits`).
        top : int, default 0
            Also report the ``top`` tokens with the largest values of that mode.

        Returns
        -------
        SampleResult
            ``tokens`` (..., n), ``logprobs`` (..., n), ``top_ids`` and
            ``top_values`` (..., top), of the input's kind and device.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling import TopK
        >>> s = Sampler([TopK(2)])
        >>> z = np.log([0.5, 0.3, 0.2])
        >>> r = s.sample_with_logprobs(z, n=3, seed=0, top=3)
        >>> bool((r.tokens == s.sample(z, n=3, seed=0)).all())
        True
        >>> r.top_ids, r.top_values.round(4)
        (array([ 0,  1, -1]), array([-0.47  , -0.9808,    -inf]))
        >>> s.sample_with_logprobs(z, mode="raw_logprobs", top=2).top_values.round(4)
        array([-0.6931, -1.204 ])
        """
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {', '.join(MODES)}, got {mode!r}.")
        width = check_integer(top, "top", minimum=0)
        if width.ndim != 0:
            raise TypeError(f"`top` must be a single integer >= 0, got shape {width.shape}.")
        rows, ctx, u = self._drawing(x, n, seed, rng, step, history)
        result = self._warp(rows, ctx)
        pos = result.positions(u, bits_for(rows.z.shape[1]))
        tokens = result.token_ids(pos)
        self._observe(tokens)
        if mode.startswith("raw"):
            vals, at = rows.z, tokens
        else:
            vals, at = result.masked_vals(), pos
        picked = gather(vals, at)
        top_pos, top_vals = top_entries(vals, int(width))
        if mode.endswith("logprobs"):
            shift = log_shift(vals)
            picked = _minus(picked, shift, vals)
            top_vals = _minus(top_vals, shift, vals)
        if mode.startswith("processed"):
            top_pos = _ids_or_missing(result, top_pos)
        return SampleResult(
            tokens=rows.restore(tokens),
            logprobs=_restore(rows, picked),
            top_ids=_restore(rows, top_pos),
            top_values=_restore(rows, top_vals),
            mode=mode,
        )


_FUSABLE: tuple[type[Warper], ...] = (Temperature, *_fused.FIRST_CUTS)


def _check_rows_left(rows: Rows, stages: tuple[Warper, ...]) -> None:
    """A ValueError when the leading stages removed every token of some row."""
    top = rows.row_max
    if rows.torch:
        import torch

        bad = bool(torch.isneginf(top).any())
    else:
        bad = bool(np.isneginf(top).any())
    if bad:
        names = ", ".join(type(w).__name__ for w in stages)
        raise ValueError(
            f"every token of a row was removed by {names}: nothing is left to sample "
            "(check `history` and the stages' parameters)."
        )


def _minus(values: Any, shift: Any, like: Any) -> Any:
    """``values - shift`` in float64, back in ``like``'s floating dtype."""
    if is_torch(values):
        import torch

        return (values.to(torch.float64) - shift).to(like.dtype)
    return (values.astype(np.float64) - shift).astype(like.dtype)


def _ids_or_missing(result: Any, pos: Any) -> Any:
    """Token ids of candidate positions, -1 where the position is -1."""
    missing = pos < 0
    if is_torch(pos):
        import torch

        ids = result.token_ids(torch.where(missing, 0, pos))
        return torch.where(missing, -1, ids)
    ids = result.token_ids(np.where(missing, 0, pos))
    return np.where(missing, -1, ids)


def _restore(rows: Rows, result: Any) -> Any:
    """Reshape a (B, k) result to the input's batch shape, of its kind, keeping its dtype."""
    return result.reshape(rows.batch_shape + tuple(result.shape[1:]))
