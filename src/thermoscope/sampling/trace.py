"""The chain, stage by stage: what each step of a `Sampler` kept, removed and left behind.

Most "the sampler is broken" reports are ordering surprises: min-p judged a
token before the temperature flattened it, truncation ran before a huge
temperature, top-p saw a sharpened or an unsharpened distribution. A
:class:`Trace` makes each step visible for one row of logits: after every
stage, the kept set, its mass under the *untruncated* input distribution,
the entropy of the distribution the stage leaves, its most likely tokens and
what the stage removed.

Examples
--------
>>> import numpy as np
>>> from thermoscope.sampling import Sampler, Temperature, TopP
>>> z = np.log([0.65, 0.3, 0.05])
>>> t = Sampler([Temperature(0.5), TopP(0.8)]).trace(z)
>>> [(s.name, s.kept) for s in t.stages]
[('input', 3), ('temperature', 3), ('top_p', 1)]
>>> Sampler([Temperature(0.5), TopP(0.8)], order="llama.cpp").trace(z).stages[-1].kept
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._tables import format_table
from thermoscope._temperature import softmax_rows
from thermoscope._typing import FloatArray, IntArray

__all__ = ["StageTrace", "Trace", "trace_stages"]


@dataclass(frozen=True, eq=False)
class StageTrace:
    """The state of the row after one stage (or of the input, ``name == "input"``).

    Attributes
    ----------
    name : str
        The stage's short name (``"top_p"``), or ``"input"``.
    stage : str
        The stage as written (``"TopP(top_p=0.9, min_tokens_to_keep=1)"``).
    kept : int
        Number of tokens still possible (finite logits).
    kept_ids : ndarray of int64
        Their ids, ascending.
    mass : float
        The kept tokens' total probability under the input distribution
        (``softmax`` of the logits as given): how much of the model's own
        belief survives so far.
    entropy : float
        Entropy, in nats, of the distribution this stage leaves.
    top_ids, top_probs : ndarray
        The most likely tokens of that distribution, most likely first.
    removed_ids : ndarray of int64
        Tokens this stage removed (possible before it, not after), ascending.
    removed_mass : float
        Their probability under the input distribution.
    logits : ndarray of float64
        The row's logits after this stage (``-inf`` for removed tokens).
    """

    name: str
    stage: str
    kept: int
    kept_ids: IntArray
    mass: float
    entropy: float
    top_ids: IntArray
    top_probs: FloatArray
    removed_ids: IntArray
    removed_mass: float
    logits: FloatArray

    @property
    def probs(self) -> FloatArray:
        """The distribution this stage leaves: softmax of :attr:`logits`.

        Examples
        --------
        >>> from thermoscope.sampling import Sampler, TopK
        >>> Sampler([TopK(1)]).trace([1.0, 2.0]).stages[-1].probs
        array([0., 1.])
        """
        out: FloatArray = softmax_rows(self.logits[None, :])[0]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready Python values (``-inf`` logits as None).

        Examples
        --------
        >>> from thermoscope.sampling import Sampler, TopK
        >>> d = Sampler([TopK(1)]).trace([1.0, 2.0]).stages[-1].to_dict()
        >>> d["name"], d["kept_ids"], d["removed_ids"]
        ('top_k', [1], [0])
        """
        return {
            "name": self.name,
            "stage": self.stage,
            "kept": self.kept,
            "kept_ids": self.kept_ids.tolist(),
            "mass": self.mass,
            "entropy": self.entropy,
            "top": [
                {"id": int(i), "prob": float(p)}
                for i, p in zip(self.top_ids, self.top_probs, strict=True)
            ],
            "removed_ids": self.removed_ids.tolist(),
            "removed_mass": self.removed_mass,
            "logits": [float(v) if np.isfinite(v) else None for v in self.logits],
        }


@dataclass(frozen=True, eq=False)
class Trace:
    """A sampler's chain on one row, stage by stage (see :meth:`Sampler.trace`).

    Attributes
    ----------
    stages : tuple of StageTrace
        The input first, then one entry per stage, in the order they ran.
    order : tuple of str
        The stages' names in that order.

    Examples
    --------
    >>> from thermoscope.sampling import Sampler, TopK, Temperature
    >>> t = Sampler([TopK(2), Temperature(100.0)], order="llama.cpp").trace([3.0, 2.0, -5.0])
    >>> t.order
    ('top_k', 'temperature')
    >>> round(t.final.entropy, 4), round(float(np.log(2)), 4)  # uniform over the two kept
    (0.6931, 0.6931)
    """

    stages: tuple[StageTrace, ...]
    order: tuple[str, ...]

    @property
    def final(self) -> StageTrace:
        """The last stage's state: the distribution tokens are drawn from.

        Examples
        --------
        >>> from thermoscope.sampling import Sampler
        >>> Sampler().trace([0.0, 0.0]).final.name
        'input'
        """
        return self.stages[-1]

    def table(self, labels: Sequence[str] | None = None, *, top: int = 3) -> str:
        """The trace as a text table, one line per stage.

        Parameters
        ----------
        labels : sequence of str, optional
            A label per token id (token strings); ids are shown without it.
        top : int, default 3
            How many of each stage's most likely tokens to show.

        Examples
        --------
        >>> from thermoscope.sampling import Sampler, TopK
        >>> t = Sampler([TopK(1)]).trace([1.0, 2.0])
        >>> print(t.table(["a", "b"]))
        stage    kept  input mass  entropy  top               removed
        -------  ----  ----------  -------  ----------------  -------------------
        input       2      1.0000   0.5822  b 0.731, a 0.269  -
        TopK(1)     1      0.7311   0.0000  b 1               1 token (0.2689): a
        """

        def name(i: int) -> str:
            return labels[i] if labels is not None else str(i)

        rows = []
        for s in self.stages:
            shown = ", ".join(
                f"{name(int(i))} {float(p):.3g}"
                for i, p in zip(s.top_ids[:top], s.top_probs[:top], strict=True)
            )
            if s.name == "input":
                removed = "-"
            elif s.removed_ids.size == 0:
                removed = "none"
            else:
                few = ", ".join(name(int(i)) for i in s.removed_ids[:5])
                more = ", ..." if s.removed_ids.size > 5 else ""
                unit = "token" if s.removed_ids.size == 1 else "tokens"
                removed = f"{s.removed_ids.size} {unit} ({s.removed_mass:.4g}): {few}{more}"
            label = s.name if s.name == "input" else _short(s.stage)
            rows.append([label, s.kept, round(s.mass, 4), round(s.entropy, 4), shown, removed])
        return format_table(["stage", "kept", "input mass", "entropy", "top", "removed"], rows)

    def to_dict(self) -> dict[str, Any]:
        """The whole trace as JSON-ready Python values.

        Examples
        --------
        >>> from thermoscope.sampling import Sampler, TopK
        >>> [s["kept"] for s in Sampler([TopK(1)]).trace([1.0, 2.0]).to_dict()["stages"]]
        [2, 1]
        """
        return {"order": list(self.order), "stages": [s.to_dict() for s in self.stages]}


def _short(stage: str) -> str:
    """``TopK(top_k=1, min_tokens_to_keep=1)`` -> ``TopK(1)``: the first value only."""
    head, _, rest = stage.partition("(")
    first = rest.split(",")[0].rstrip(")")
    return f"{head}({first.partition('=')[2] or first})"


def _entropy(p: FloatArray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum()) + 0.0


def _state(
    name: str, stage: str, z: FloatArray, before: FloatArray | None, p0: FloatArray, top: int
) -> StageTrace:
    finite = np.isfinite(z)
    p = softmax_rows(z[None, :])[0]
    order = np.argsort(-p, kind="stable")[: min(top, int(finite.sum()))]
    removed = (
        np.zeros(0, dtype=np.int64)
        if before is None
        else np.flatnonzero(np.isfinite(before) & ~finite).astype(np.int64)
    )
    return StageTrace(
        name=name,
        stage=stage,
        kept=int(finite.sum()),
        kept_ids=np.flatnonzero(finite).astype(np.int64),
        mass=float(p0[finite].sum()),
        entropy=_entropy(p),
        top_ids=order.astype(np.int64),
        top_probs=p[order],
        removed_ids=removed,
        removed_mass=float(p0[removed].sum()),
        logits=z.copy(),
    )


def trace_stages(warpers: Sequence[Any], z: Any, ctx: Any, *, top: int = 5) -> Trace:
    """Run ``warpers`` one by one on one validated row ``z`` (1, V) and record each state.

    The Sampler's :meth:`~thermoscope.sampling.Sampler.trace` is the public
    entry; this is its engine. The stages run on the plain chain in ``z``'s
    library (a tensor stays on its device while the stages run); each state
    is then copied to the host, since a trace is for reading.

    Examples
    --------
    >>> from thermoscope.sampling import TopK
    >>> from thermoscope.sampling._context import Context
    >>> t = trace_stages([TopK(1)], np.array([[0.0, 1.0]]), Context((1,)))
    >>> [s.kept for s in t.stages]
    [2, 1]
    """
    host = _host_row(z)
    p0 = softmax_rows(host[None, :])[0]
    states = [_state("input", "input", host, None, p0, top)]
    before = host
    for w in warpers:
        z = w.apply_in(z, ctx)
        now = _host_row(z)
        states.append(_state(w.name, repr(w), now, before, p0, top))
        before = now
    return Trace(tuple(states), tuple(w.name for w in warpers))


def _host_row(z: Any) -> FloatArray:
    """Row 0 of (1, V) rows as float64 numpy (a trace is read on the host)."""
    row = to_numpy(z[0], "logits")[0] if is_torch(z) else np.asarray(z[0])
    out: FloatArray = row.astype(np.float64)
    return out
