"""llama.cpp's own samplers as a live oracle, through llama-cpp-python's ctypes bindings.

A chain is a list of :class:`Stage` (a llama.cpp sampler kind and its
``llama_sampler_init_*`` arguments). :func:`run_chain` builds the samplers,
feeds each one the history with ``llama_sampler_accept``, applies them in
order to one ``llama_token_data_array`` holding a row of logits, and reads the
candidate array back. :func:`trace_chain` does the same one stage at a time
and snapshots the array after each stage.

Reading the candidate array back
--------------------------------
llama.cpp's samplers remove candidates in two ways, and both must be read:

- *shrinking* ``size`` (top-k, top-p, min-p, typical, and XTC, which also
  moves the ``data`` pointer forward past the tokens it drops), after sorting
  the array in place (``sorted`` set), so the order of ids changes;
- *masking* with ``logit = -inf`` while ``size`` stays (top-n-sigma, and
  temperature 0, which keeps only the first maximal logit).

A token is kept when it is among the first ``size`` entries from ``data``
(the pointer as the samplers left it) and its logit is not -inf.
:class:`Candidates` holds that array as read back (ids, logits, size) and
gives the kept set and its float64 softmax over the vocabulary.

No model is needed: every sampler used here ignores the vocabulary except DRY,
which tokenizes string sequence breakers with it; DRY is therefore built with
a NULL vocabulary and no breakers (llama.cpp reads the vocabulary only when
breakers are given). Nothing here draws a token: no ``dist`` sampler runs.
Adaptive-p selects a token inside its ``apply``; its transformed logits are
what is read back.

llama-cpp-python is optional: :data:`llama_cpp` is None when it is not
installed, and the tests skip.
"""

from __future__ import annotations

import atexit
import ctypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from llama_cpp import llama_cpp
except ImportError:  # the oracle is optional; tests using it skip
    llama_cpp = None
else:
    # llama_cpp._utils opens os.devnull twice at import and never closes it: a
    # ResourceWarning at interpreter exit. Nothing here uses them; close them then.
    from llama_cpp import _utils as _llama_utils

    for _name in ("outnull_file", "errnull_file"):
        _file = getattr(_llama_utils, _name, None)
        if _file is not None:
            atexit.register(_file.close)

__all__ = [
    "Candidates",
    "Session",
    "Stage",
    "adaptive_p",
    "dry",
    "llama_cpp",
    "logit_bias",
    "min_p",
    "penalties",
    "run_chain",
    "temp",
    "temp_ext",
    "top_k",
    "top_n_sigma",
    "top_p",
    "trace_chain",
    "typical",
    "xtc",
]


@dataclass(frozen=True)
class Stage:
    """One llama.cpp sampler: its kind (``top_k``, ``penalties``, ...) and init arguments."""

    kind: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.kind}{self.args}"


def top_k(k: int) -> Stage:
    """``llama_sampler_init_top_k(k)``; ``k <= 0`` is a no-op in llama.cpp."""
    return Stage("top_k", (int(k),))


def top_p(p: float, min_keep: int = 1) -> Stage:
    """``llama_sampler_init_top_p(p, min_keep)``; ``p >= 1`` is a no-op."""
    return Stage("top_p", (float(p), int(min_keep)))


def min_p(p: float, min_keep: int = 1) -> Stage:
    """``llama_sampler_init_min_p(p, min_keep)``; ``p <= 0`` is a no-op."""
    return Stage("min_p", (float(p), int(min_keep)))


def typical(p: float, min_keep: int = 1) -> Stage:
    """``llama_sampler_init_typical(p, min_keep)``; ``p >= 1`` is a no-op."""
    return Stage("typical", (float(p), int(min_keep)))


def temp(t: float) -> Stage:
    """``llama_sampler_init_temp(t)``; ``t <= 0`` keeps the first maximal logit only."""
    return Stage("temp", (float(t),))


def temp_ext(t: float, delta: float, exponent: float) -> Stage:
    """``llama_sampler_init_temp_ext`` (dynatemp): T in [max(0, t - delta), t + delta]."""
    return Stage("temp_ext", (float(t), float(delta), float(exponent)))


def xtc(probability: float, threshold: float, min_keep: int = 1, seed: int = 0) -> Stage:
    """``llama_sampler_init_xtc``: its coin comes from its own mt19937 seeded with ``seed``."""
    return Stage("xtc", (float(probability), float(threshold), int(min_keep), int(seed)))


def top_n_sigma(n: float) -> Stage:
    """``llama_sampler_init_top_n_sigma(n)``; ``n <= 0`` is a no-op."""
    return Stage("top_n_sigma", (float(n),))


def penalties(last_n: int, repeat: float, freq: float, present: float) -> Stage:
    """``llama_sampler_init_penalties``; ``last_n <= 0`` disables it (no "-1 = all" here)."""
    return Stage("penalties", (int(last_n), float(repeat), float(freq), float(present)))


def dry(multiplier: float, base: float, allowed_length: int, last_n: int) -> Stage:
    """``llama_sampler_init_dry`` with no vocabulary and no sequence breakers."""
    return Stage("dry", (float(multiplier), float(base), int(allowed_length), int(last_n)))


def logit_bias(bias: dict[int, float]) -> Stage:
    """``llama_sampler_init_logit_bias`` with ``{token: bias}``."""
    return Stage("logit_bias", tuple(sorted((int(t), float(b)) for t, b in bias.items())))


def adaptive_p(target: float, decay: float, seed: int = 0) -> Stage:
    """``llama_sampler_init_adaptive_p``: transforms the distribution and selects a token."""
    return Stage("adaptive_p", (float(target), float(decay), int(seed)))


def _lib() -> Any:
    if llama_cpp is None:
        raise RuntimeError("llama-cpp-python is not installed: pip install llama-cpp-python")
    _quiet()
    return llama_cpp


_LOG_CALLBACK: list[Any] = []


def _quiet() -> None:
    """Send llama.cpp's log lines nowhere (DRY and others warn on stderr); set once."""
    if _LOG_CALLBACK:
        return

    def ignore(level: int, text: bytes, user_data: Any) -> None:
        return None

    callback = llama_cpp.llama_log_callback(ignore)
    _LOG_CALLBACK.append(callback)  # ctypes needs the callback kept alive
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _make(stage: Stage, n_vocab: int) -> Any:
    lib = _lib()
    a = stage.args
    if stage.kind == "top_k":
        return lib.llama_sampler_init_top_k(*a)
    if stage.kind == "top_p":
        return lib.llama_sampler_init_top_p(*a)
    if stage.kind == "min_p":
        return lib.llama_sampler_init_min_p(*a)
    if stage.kind == "typical":
        return lib.llama_sampler_init_typical(*a)
    if stage.kind == "temp":
        return lib.llama_sampler_init_temp(*a)
    if stage.kind == "temp_ext":
        return lib.llama_sampler_init_temp_ext(*a)
    if stage.kind == "xtc":
        return lib.llama_sampler_init_xtc(*a)
    if stage.kind == "top_n_sigma":
        return lib.llama_sampler_init_top_n_sigma(*a)
    if stage.kind == "penalties":
        return lib.llama_sampler_init_penalties(n_vocab, *a)
    if stage.kind == "dry":
        # The vocabulary is read only to tokenize string breakers: none are given.
        return lib.llama_sampler_init_dry(None, *a, None, 0)
    if stage.kind == "logit_bias":
        biases = (lib.llama_logit_bias * len(a))(*[lib.llama_logit_bias(t, b) for t, b in a])
        return lib.llama_sampler_init_logit_bias(n_vocab, len(a), biases)
    if stage.kind == "adaptive_p":
        return lib.llama_sampler_init_adaptive_p(*a)
    raise ValueError(f"unknown llama.cpp sampler kind {stage.kind!r}")


@dataclass(frozen=True)
class Candidates:
    """llama.cpp's candidate array as a stage left it.

    Attributes
    ----------
    ids, logits : ndarray
        The first ``size`` entries from the array's ``data`` pointer, in the
        array's order (sorted or not), int64 and float32.
    n_vocab : int
        The row's vocabulary size.
    sorted : bool
        llama.cpp's ``sorted`` flag.
    selected : int
        ``selected`` (the index a selecting sampler chose, -1 otherwise).
    """

    ids: np.ndarray
    logits: np.ndarray
    n_vocab: int
    sorted: bool
    selected: int

    @property
    def size(self) -> int:
        """llama.cpp's ``size``: candidates still listed, -inf ones included."""
        return int(self.ids.shape[0])

    @property
    def kept(self) -> np.ndarray:
        """Boolean (V,): the tokens listed (within ``size``) with a logit above -inf."""
        out = np.zeros(self.n_vocab, dtype=bool)
        out[self.ids[self.logits > -np.inf]] = True
        return out

    def dense_logits(self) -> np.ndarray:
        """(V,) float64: each kept token's logit, -inf elsewhere."""
        out = np.full(self.n_vocab, -np.inf)
        live = self.logits > -np.inf
        out[self.ids[live]] = self.logits[live]
        return out

    def probs(self) -> np.ndarray:
        """(V,) float64 softmax of :meth:`dense_logits` (0 outside the kept set)."""
        z = self.dense_logits()
        w = np.exp(z - z.max())
        out: np.ndarray = w / w.sum()
        return out


def _array(logits: np.ndarray) -> tuple[Any, Any]:
    lib = _lib()
    n = int(logits.shape[0])
    buf = (lib.llama_token_data * n)()
    for i, value in enumerate(logits.tolist()):
        buf[i].id = i
        buf[i].logit = value
        buf[i].p = 0.0
    arr = lib.llama_token_data_array(ctypes.cast(buf, lib.llama_token_data_p), n, -1, False)
    return buf, arr


def _read(arr: Any, n_vocab: int) -> Candidates:
    size = int(arr.size)
    ids = np.empty(size, dtype=np.int64)
    vals = np.empty(size, dtype=np.float32)
    data = arr.data  # XTC moves this pointer: read from where it points now
    for i in range(size):
        ids[i] = data[i].id
        vals[i] = data[i].logit
    return Candidates(ids, vals, n_vocab, bool(arr.sorted), int(arr.selected))


def _row(logits: Any) -> np.ndarray:
    row = np.asarray(logits, dtype=np.float32)
    if row.ndim != 1 or row.shape[0] == 0:
        raise ValueError(f"logits must be one non-empty row, got shape {row.shape}")
    return row


def trace_chain(
    stages: Sequence[Stage], logits: Any, history: Iterable[int] = ()
) -> list[Candidates]:
    """Apply ``stages`` one at a time to one row of ``logits``; the array after each stage.

    Every sampler first ``accept``s the tokens of ``history`` in order (the
    penalties and DRY keep their window from it; the others ignore it).
    """
    lib = _lib()
    row = _row(logits)
    tokens = [int(t) for t in history]
    buf, arr = _array(row)
    out = []
    for stage in stages:
        smpl = _make(stage, row.shape[0])
        try:
            for t in tokens:
                lib.llama_sampler_accept(smpl, t)
            lib.llama_sampler_apply(smpl, ctypes.byref(arr))
            out.append(_read(arr, row.shape[0]))
        finally:
            lib.llama_sampler_free(smpl)
    del buf
    return out


def run_chain(stages: Sequence[Stage], logits: Any, history: Iterable[int] = ()) -> Candidates:
    """Apply ``stages`` as one ``llama_sampler_chain`` to one row; the array it leaves.

    The chain ``accept``s each token of ``history`` (passing it to every
    sampler), then ``apply`` runs the samplers in order, as
    ``llama_sampler_sample`` does before a draw.
    """
    lib = _lib()
    row = _row(logits)
    params = lib.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = lib.llama_sampler_chain_init(params)
    try:
        for stage in stages:
            lib.llama_sampler_chain_add(chain, _make(stage, row.shape[0]))  # chain owns it
        for t in history:
            lib.llama_sampler_accept(chain, int(t))
        buf, arr = _array(row)
        lib.llama_sampler_apply(chain, ctypes.byref(arr))
        result = _read(arr, row.shape[0])
        del buf
        return result
    finally:
        lib.llama_sampler_free(chain)


class Session:
    """One llama.cpp sampler kept alive across steps (adaptive-p's EMA, penalties' window).

    ``apply(logits)`` applies it to a fresh candidate array and reads it
    back; ``accept(token)`` is ``llama_sampler_accept``. Use it as a context
    manager, or call :meth:`close`.
    """

    def __init__(self, stage: Stage, n_vocab: int):
        self._lib = _lib()
        self._n_vocab = int(n_vocab)
        self._smpl = _make(stage, self._n_vocab)

    def apply(self, logits: Any) -> Candidates:
        row = _row(logits)
        if row.shape[0] != self._n_vocab:
            raise ValueError(f"logits must have {self._n_vocab} entries, got {row.shape[0]}")
        buf, arr = _array(row)
        self._lib.llama_sampler_apply(self._smpl, ctypes.byref(arr))
        result = _read(arr, self._n_vocab)
        del buf
        return result

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self._smpl, int(token))

    def close(self) -> None:
        if self._smpl is not None:
            self._lib.llama_sampler_free(self._smpl)
            self._smpl = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
