"""Next-token calibration of a causal language model over a text corpus.

Every position of a text is one classification: the model's next-token
distribution over the vocabulary against the token that follows.
:func:`calibrate_language_model` runs the model once over the corpus and
reports top-label ECE (l1, l2, max), class-wise ECE, smooth ECE, NLL (and
perplexity), Brier and accuracy before (``T = 1``) and after one fitted
temperature, with the reliability curves for a diagram.

Design (one forward pass per window, memory independent of the corpus)
---------------------------------------------------------------------
The corpus is tokenized first (cheap), so the number of scored tokens is
known before any forward pass. Its windows are shuffled with ``seed`` and
split into a *fit* split and an *evaluation* split:

1. Fit split: whole windows, ``fit_fraction`` of the tokens. A uniform
   random sample of ``max_fit_tokens`` of their positions (all of them when
   fewer) keeps its next-token logits (``max_fit_tokens x vocabulary``
   numbers, the only logits ever held), and the temperature is fitted on
   them by :func:`thermoscope.calibration.fit_temperature`: the certified
   optimum of the mean NLL on exactly those rows (no approximation; ``T``
   estimates the corpus optimum with sampling error only). Sampling
   positions from many windows, rather than keeping a few whole windows,
   matters: tokens of one window are strongly correlated, and on the
   embedded model's held-out corpus 4,096 tokens from 16 whole windows gave
   T between 0.98 and 1.02 across seeds.
2. Evaluation split: every other window. Each batch of logits is reduced on
   its device, at ``T = 1`` and at the fitted ``T``, to per-bin sums
   (top-label and class-wise), summed NLL and Brier, and two numbers per
   token (confidence, correct) for smooth ECE; the logits are then dropped.
   The metrics are exact (float64 sums of float32 per-token values) and
   held out: the temperature never saw these tokens.

No window is run twice, so the extra cost over the forward passes alone is
the reductions and the 1-D fit (``bench/lm_calibration.py`` measures it).

Examples
--------
>>> r = calibrate_language_model(["def f(x):\\n    return x + 1\\n" * 8], window=16,
...                              progress=False)
>>> r.n_fit_tokens > 0 and r.n_eval_tokens > 0
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._progress import progress_bar
from thermoscope._tables import format_table
from thermoscope._validation import as_generator, check_fraction, check_integer, check_seed
from thermoscope.calibration._binning import BinSums, error_from_sums, uniform_edges
from thermoscope.calibration._inputs import check_n_bins
from thermoscope.calibration._results import CalibrationSummary
from thermoscope.calibration.fit import TemperatureFit, fit_temperature

__all__ = [
    "LMCalibration",
    "LMMetrics",
    "calibrate_language_model",
    "read_corpus",
]

#: Bytes looked at to tell a binary file from text (as git and grep do: a NUL byte).
_SNIFF_BYTES = 8192


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class LMMetrics:
    """Next-token calibration metrics of one model at one temperature.

    Attributes
    ----------
    summary : CalibrationSummary
        Top-label ECE (l1, l2), MCE, NLL (nats per token), Brier, accuracy
        and the reliability curve.
    classwise_ece : float or None
        Mean over the vocabulary of each token's ECE (Kull et al., 2019);
        None when not computed (``classwise=False``).
    smooth_ece : float or None
        Top-label smooth ECE (Blasiak and Nakkiran); None when
        ``thermoscope.calibration.smooth`` is not available.

    Examples
    --------
    >>> from thermoscope.calibration import calibration_summary
    >>> m = LMMetrics(calibration_summary([[0.9, 0.1]], [0], n_bins=2), None, None)
    >>> round(m.perplexity, 4)
    1.1111
    """

    summary: CalibrationSummary
    classwise_ece: float | None
    smooth_ece: float | None

    @property
    def perplexity(self) -> float:
        """``exp(NLL)``: the effective number of equally likely next tokens."""
        return math.exp(float(self.summary.nll))

    def as_dict(self) -> dict[str, float | None]:
        """Every scalar metric by name (floats; None when not computed).

        Examples
        --------
        >>> from thermoscope.calibration import calibration_summary
        >>> s = calibration_summary([[0.9, 0.1]], [0], n_bins=2)
        >>> LMMetrics(s, None, None).as_dict()["accuracy"]
        1.0
        """
        d: dict[str, float | None] = dict(self.summary.as_dict())
        d["perplexity"] = self.perplexity
        d["classwise_ece"] = self.classwise_ece
        d["smooth_ece"] = self.smooth_ece
        return d


_ROWS = (
    ("ECE", "ece"),
    ("ECE (l2)", "ece_l2"),
    ("MCE", "mce"),
    ("smooth ECE", "smooth_ece"),
    ("class-wise ECE", "classwise_ece"),
    ("NLL (nats/token)", "nll"),
    ("perplexity", "perplexity"),
    ("Brier", "brier"),
    ("accuracy", "accuracy"),
)


@dataclass(frozen=True, eq=False)
class LMCalibration:
    """The result of :func:`calibrate_language_model`.

    Attributes
    ----------
    temperature : float
        The fitted temperature (``fit.temperature``).
    fit : TemperatureFit
        The certified fit on the fit split (``fit.nll_at_one`` and
        ``fit.nll`` are the fit split's NLL before and after).
    before, after : LMMetrics
        Held-out metrics on the evaluation split at ``T = 1`` and at
        ``temperature``.
    n_fit_tokens, n_eval_tokens : int
        Tokens the temperature was fitted on, and held-out tokens scored.
    n_texts, window, n_bins : int
        Texts read, tokens per window, equal-width bins.
    notes : tuple of str
        What was skipped and why (e.g. smooth ECE unavailable).

    Examples
    --------
    >>> r = calibrate_language_model(["x = 1\\n" * 40], window=16, progress=False)
    >>> str(r).splitlines()[0].startswith("temperature T =")
    True
    """

    temperature: float
    fit: TemperatureFit
    before: LMMetrics
    after: LMMetrics
    n_fit_tokens: int
    n_eval_tokens: int
    n_texts: int
    window: int
    n_bins: int
    notes: tuple[str, ...] = field(default=())

    def rows(self) -> list[list[object]]:
        """The table's rows: ``[metric, before, after]``; ``"-"`` when not computed.

        Examples
        --------
        >>> r = calibrate_language_model(["x = 1\\n" * 40], window=16, progress=False)
        >>> r.rows()[0][0]
        'ECE'
        """
        b, a = self.before.as_dict(), self.after.as_dict()
        out: list[list[object]] = []
        for label, key in _ROWS:
            vb, va = b[key], a[key]
            out.append([label, "-" if vb is None else vb, "-" if va is None else va])
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: temperature, split sizes, both sides' metrics, notes.

        Examples
        --------
        >>> r = calibrate_language_model(["x = 1\\n" * 40], window=16, progress=False)
        >>> sorted(r.as_dict())[:3]
        ['after', 'before', 'fit_bound']
        """
        return {
            "temperature": self.temperature,
            "fit_bound": self.fit.bound,
            "fit_n_iter": self.fit.n_iter,
            "fit_nll_before": self.fit.nll_at_one,
            "fit_nll_after": self.fit.nll,
            "n_fit_tokens": self.n_fit_tokens,
            "n_eval_tokens": self.n_eval_tokens,
            "n_texts": self.n_texts,
            "window": self.window,
            "n_bins": self.n_bins,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"temperature T = {self.temperature:.6g} (certified NLL optimum on "
            f"{self.n_fit_tokens} fit tokens, {self.fit.n_iter} Newton passes)",
            f"held-out metrics on {self.n_eval_tokens} tokens ({self.n_texts} texts, "
            f"windows of {self.window} tokens, {self.n_bins} equal-width bins):",
            "",
            format_table(
                ["metric", "before (T = 1)", f"after (T = {self.temperature:.4g})"], self.rows()
            ),
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- corpus


def read_corpus(paths: Iterable[str | os.PathLike[str]], name: str = "paths") -> list[str]:
    """Read UTF-8 text files for :func:`calibrate_language_model`, refusing bad ones.

    Parameters
    ----------
    paths : iterable of path
        Text files (one or more).
    name : str, default "paths"
        The argument's name in error messages (the CLI passes ``--text``).

    Raises
    ------
    ValueError
        No path, a missing file or a folder, a binary file (a NUL byte in
        its first 8 KiB, or not UTF-8), or a file with only whitespace.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.py"
    >>> _ = p.write_text("x = 1\\n")
    >>> read_corpus([p])
    ['x = 1\\n']
    >>> read_corpus([p.parent / "missing.py"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `paths` must be existing text files, got '...missing.py' (not found).
    """
    texts: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise ValueError(f"`{name}` must be text files, got the folder '{path}'.")
        if not path.is_file():
            raise ValueError(f"`{name}` must be existing text files, got '{path}' (not found).")
        data = path.read_bytes()
        if b"\x00" in data[:_SNIFF_BYTES]:
            raise ValueError(f"`{name}` must be text files, got the binary file '{path}'.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"`{name}` must be UTF-8 text files, got '{path}' (byte {exc.start} is not UTF-8)."
            ) from None
        if not text.strip():
            raise ValueError(f"`{name}` must be files with some text, got the empty file '{path}'.")
        texts.append(text)
    if not texts:
        raise ValueError(f"`{name}` must name at least one text file, got none.")
    return texts


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"`texts` must be a string or a sequence of strings, got {texts!r:.80}.")
    if not texts or not any(t.strip() for t in texts):
        raise ValueError("`texts` must hold some text, got only empty strings.")
    return list(texts)


def _windows(
    texts: list[str], tokenizer: Any, window: int, max_tokens: int | None
) -> list[list[int]]:
    """Token windows; consecutive windows of a text share one token, so each is scored once.

    Each text starts with the end-of-text token when the tokenizer has one
    (texts were joined by it in training), which gives the first real token a
    prediction too. A window of ``L`` tokens scores ``L - 1`` next tokens.
    """
    eos = getattr(tokenizer, "eos_token_id", None)
    out: list[list[int]] = []
    left = max_tokens
    # One call for all texts: a fast tokenizer encodes them in parallel.
    # verbose=False: transformers warns about texts longer than the context,
    # which is exactly why they are cut into windows here.
    for encoded in tokenizer(texts, verbose=False).input_ids:
        ids = [int(eos), *encoded] if eos is not None else list(encoded)
        for start in range(0, max(len(ids) - 1, 0), window - 1):
            piece = ids[start : start + window]
            if left is not None:
                piece = piece[: left + 1]
                left -= len(piece) - 1
            if len(piece) >= 2:
                out.append(piece)
            if left is not None and left <= 0:
                return out
    return out


# --------------------------------------------------------------------------- reductions


class _Side:
    """On-device running sums of every metric at one inverse temperature ``beta``."""

    def __init__(self, beta: float, n_bins: int, vocab: int, classwise: bool, device: Any) -> None:
        import torch

        self.beta = beta
        self.n_bins = n_bins
        self.classwise = classwise
        wide = torch.float64
        self.count = torch.zeros(n_bins, dtype=torch.int64, device=device)
        self.conf = torch.zeros(n_bins, dtype=wide, device=device)
        self.hit = torch.zeros(n_bins, dtype=wide, device=device)
        self.totals = torch.zeros(2, dtype=wide, device=device)  # nll, brier
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        size = vocab * n_bins if classwise else 0
        # Class-wise sums over bins >= 1 only: a row has fewer than n_bins
        # probabilities >= 1 / n_bins, so bin 0 is found by subtraction from
        # each class's total (count = rows, confidence = column sum).
        self.cw_count = torch.zeros(size, dtype=torch.int64, device=device)
        self.cw_conf = torch.zeros(size, dtype=wide, device=device)
        self.cw_hit = torch.zeros(size, dtype=wide, device=device)
        self.cw_colsum = torch.zeros(vocab if classwise else 0, dtype=wide, device=device)
        self.confs: list[Any] = []
        self.hits: list[Any] = []
        self._scratch: Any = None
        self._mask: Any = None

    def _buffer(self, like: Any) -> Any:
        """A reused ``like``-shaped scratch array: fresh pages cost more than the exp."""
        import torch

        n = like.shape[0]
        if self._scratch is None or self._scratch.shape[0] < n:
            self._scratch = torch.empty_like(like)
        return self._scratch[:n]

    def add(self, d: Any, d_true: Any, hit: Any, y: Any) -> None:
        """Reduce one batch: ``d = z - max(z)`` ``(n, V)`` float32, ``d`` at the labels, hits."""
        import torch

        # The one pass of exp over the vocabulary; the arg-max has e = 1.
        e = self._buffer(d)
        if self.beta == 1.0:
            torch.exp(d, out=e)
        else:
            torch.mul(d, self.beta, out=e).exp_()
        ones = torch.ones(e.shape[1], dtype=e.dtype, device=e.device)
        s = torch.mv(e, ones)
        conf = 1.0 / s
        log_p_true = self.beta * d_true - torch.log(s)
        p_true = torch.exp(log_p_true)
        conf64 = conf.double()
        idx = (conf64 * self.n_bins).long().clamp_(0, self.n_bins - 1)
        hit64 = hit.double()
        self.count += torch.bincount(idx, minlength=self.n_bins)
        self.conf.index_add_(0, idx, conf64)
        self.hit.index_add_(0, idx, hit64)
        self.correct += hit.sum()
        self.confs.append(conf)
        self.hits.append(hit)
        if self.classwise:
            self._add_classwise(e, s, p_true, y)
        sumsq = torch.mv(e.square_(), ones) / (s * s)  # e is not needed after this
        brier = sumsq - 2.0 * p_true + 1.0
        self.totals += torch.stack([-log_p_true.double().sum(), brier.double().sum()])

    def _add_classwise(self, e: Any, s: Any, p_true: Any, y: Any) -> None:
        import torch

        nb = self.n_bins
        inv = 1.0 / s
        self.cw_colsum += torch.mv(e.t(), inv).double()
        # Candidates for bins >= 1 (p >= 1 / n_bins), with a margin for rounding;
        # their exact bin is floor(p * n_bins) of p = e / s, as for the labels.
        if self._mask is None or self._mask.shape[0] < e.shape[0]:
            self._mask = torch.empty(e.shape, dtype=torch.bool, device=e.device)
        mask = torch.ge(e, (s * (0.999 / nb))[:, None], out=self._mask[: e.shape[0]])
        rows, cols = torch.nonzero(mask, as_tuple=True)
        p = (e[rows, cols] * inv[rows]).double()
        idx = (p * nb).long().clamp_(0, nb - 1)
        keep = idx > 0
        flat = cols[keep] * nb + idx[keep]
        self.cw_count += torch.bincount(flat, minlength=self.cw_count.shape[0])
        self.cw_conf.index_add_(0, flat, p[keep])
        yidx = (p_true.double() * nb).long().clamp_(0, nb - 1)
        self.cw_hit.index_add_(0, y * nb + yidx, torch.ones_like(p_true, dtype=torch.float64))

    def finish(self, smooth: Any) -> LMMetrics:
        """Bring the sums to the host once and finish the metrics."""
        import torch

        nb = self.n_bins
        count = to_numpy(self.count, "count")[0].astype(np.int64)
        sums = BinSums(count, to_numpy(self.conf, "conf")[0], to_numpy(self.hit, "hit")[0])
        nll, brier = (float(v) for v in to_numpy(self.totals, "totals")[0])
        correct = int(to_numpy(self.correct, "correct")[0])
        n = int(count.sum())
        summary = CalibrationSummary.from_sums(sums, uniform_edges(nb), n, correct, nll, brier)
        classwise = None
        if self.classwise:
            cw_count = to_numpy(self.cw_count, "count")[0].astype(np.int64).reshape(-1, nb)
            cw_conf = to_numpy(self.cw_conf, "conf")[0].reshape(-1, nb)
            cw_count[:, 0] = n - cw_count[:, 1:].sum(axis=1)
            colsum = to_numpy(self.cw_colsum, "colsum")[0]
            cw_conf[:, 0] = np.maximum(colsum - cw_conf[:, 1:].sum(axis=1), 0.0)
            cw_hit = to_numpy(self.cw_hit, "hit")[0].reshape(-1, nb)
            cw = BinSums(cw_count, cw_conf, cw_hit)
            classwise = float(np.mean(error_from_sums(cw, "l1")))
        smooth_ece = None
        if smooth is not None:
            conf = to_numpy(torch.cat(self.confs).double(), "conf")[0]
            hit = to_numpy(torch.cat(self.hits).long(), "hit")[0].astype(np.int64)
            smooth_ece = float(smooth(conf, hit))
        return LMMetrics(summary, classwise, smooth_ece)


def _reduce(sides: list[_Side], z: Any, y: Any) -> None:
    """Feed one batch of float32 logits to every side; max, arg-max and shift are shared.

    ``z`` is consumed: it is shifted in place (``z - max z``).
    """
    top, arg = z.max(dim=1)
    d = z.sub_(top[:, None])  # T > 0 keeps the arg-max: beta * d is the shifted beta * z
    d_true = d.gather(1, y[:, None])[:, 0]
    hit = arg == y
    for side in sides:
        side.add(d, d_true, hit, y)


def _smooth_ece() -> tuple[Any, str | None]:
    """``smooth_calibration_error`` on (confidence, correct) pairs, or None and why."""
    try:
        from thermoscope.calibration.smooth import smooth_calibration_error
    except ImportError:
        return None, "smooth ECE skipped: thermoscope.calibration.smooth is not available"
    # Top-label smECE is the binary smECE of (confidence, correct) pairs, as
    # relplot computes it for multiclass models.
    return smooth_calibration_error, None


# --------------------------------------------------------------------------- the pass


def _load(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    if model is None or isinstance(model, (str, os.PathLike)):
        from thermoscope.generation.model import load_model

        if tokenizer is not None:
            raise ValueError(
                "`tokenizer` must be None when `model` is a path (its folder has the "
                f"tokenizer), got {type(tokenizer).__name__}."
            )
        loaded: tuple[Any, Any] = load_model(None if model is None else Path(model))
        return loaded
    if tokenizer is None:
        raise ValueError(
            "`tokenizer` must be given with a loaded `model` (or pass a model folder), got None."
        )
    return model, tokenizer


def _batches(windows: list[list[int]], batch_size: int) -> Iterator[list[list[int]]]:
    for lo in range(0, len(windows), batch_size):
        yield windows[lo : lo + batch_size]


def _forward(model: Any, batch: list[list[int]], pad: int) -> tuple[Any, Any]:
    """Next-token logits at the scored positions ``(n, V)`` and their labels ``(n,)``."""
    import torch

    device = model.device
    width = max(len(w) for w in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, w in enumerate(batch):
        ids[i, : len(w)] = torch.tensor(w)
        mask[i, : len(w)] = 1
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    scored = mask[:, 1:].bool()  # right padding: a causal model never sees the pads
    return logits[scored].float(), ids[:, 1:][scored]


def calibrate_language_model(
    texts: str | Sequence[str],
    *,
    model: Any = None,
    tokenizer: Any = None,
    window: int | None = None,
    batch_size: int = 8,
    max_tokens: int | None = None,
    fit_fraction: float = 0.25,
    max_fit_tokens: int = 4096,
    n_bins: int = 15,
    classwise: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> LMCalibration:
    """Next-token calibration of a causal LM on ``texts``: fit one T, report before and after.

    Parameters
    ----------
    texts : str or sequence of str
        The corpus (:func:`read_corpus` reads files). Use text the model was
        not trained on: the embedded model's held-out files are listed in its
        ``training.json`` (``data.val_file_names``).
    model : path, transformers model or None
        A local model folder (loaded by
        :func:`thermoscope.generation.load_model`), a loaded causal LM (then
        give ``tokenizer``), or None for the embedded model.
    tokenizer : transformers tokenizer, optional
        Only with a loaded ``model``.
    window : int, optional
        Tokens per forward pass; default the model's context
        (``n_positions`` or ``max_position_embeddings``), at most 1024.
    batch_size : int, default 8
        Windows per forward pass.
    max_tokens : int, optional
        Score at most this many tokens (the first ones, text by text).
    fit_fraction : float in (0, 1), default 0.25
        Share of the tokens (whole windows, chosen at random) that the fit
        positions are drawn from; the rest are the held-out evaluation split.
    max_fit_tokens : int, default 4096
        Positions of the fit split (a uniform random sample) that the
        temperature is fitted on: their logits are the only ones kept,
        ``max_fit_tokens x vocabulary`` float32 numbers on the model's device.
    n_bins : int, default 15
        Equal-width bins of the ECEs and the reliability curve.
    classwise : bool, default True
        Also accumulate class-wise ECE (``vocabulary x n_bins`` sums).
    seed : int, default 0
        Seeds the shuffle that splits the windows.
    progress : bool, default True
        A progress bar over the windows (stderr, only on a terminal).

    Returns
    -------
    LMCalibration
        Its ``str`` is a before/after table.

    Raises
    ------
    ValueError
        Empty text, too few tokens for two windows, a bad model folder, a
        ``window`` longer than the model's context, out-of-range options.
    TypeError
        ``texts`` not strings; non-integer options.

    Notes
    -----
    Runs under ``torch.inference_mode``; each window goes through the model
    once (module docstring). The metrics are computed in float32 per token
    and summed in float64; a bf16/fp16 model's logits are widened to float32
    first.

    Examples
    --------
    >>> r = calibrate_language_model(["for i in range(10):\\n    print(i)\\n" * 6],
    ...                              window=32, progress=False)
    >>> r.after.summary.nll <= r.before.summary.nll + 0.5, r.temperature > 0
    (True, True)
    """
    import torch

    corpus = _check_texts(texts)
    batch_size = int(check_integer(batch_size, "batch_size"))
    if max_tokens is not None:
        max_tokens = int(check_integer(max_tokens, "max_tokens", 2))
    max_fit_tokens = int(check_integer(max_fit_tokens, "max_fit_tokens"))
    fit_fraction = float(check_fraction(fit_fraction, "fit_fraction", high_open=True))
    n_bins = check_n_bins(n_bins)
    rng = as_generator(check_seed(seed))
    model, tokenizer = _load(model, tokenizer)
    context = int(
        getattr(model.config, "n_positions", None)
        or getattr(model.config, "max_position_embeddings", None)
        or 1024
    )
    if window is None:
        window = int(min(context, 1024))
    window = int(check_integer(window, "window", 2, int(context)))
    windows = _windows(corpus, tokenizer, window, max_tokens)
    if len(windows) < 2:
        raise ValueError(
            f"`texts` must give at least 2 windows of tokens (one to fit, one to evaluate), "
            f"got {len(windows)} with window={window}; pass more text or a smaller window."
        )
    order = rng.permutation(len(windows))
    sizes = np.array([len(w) - 1 for w in windows])[order]
    budget = fit_fraction * int(sizes.sum())
    n_fit = max(1, int(np.searchsorted(np.cumsum(sizes), budget, side="right")))
    n_fit = min(n_fit, len(windows) - 1)
    fit_windows = [windows[i] for i in order[:n_fit]]
    eval_windows = [windows[i] for i in order[n_fit:]]
    n_positions = int(sizes[:n_fit].sum())
    keep = np.zeros(n_positions, dtype=bool)
    keep[rng.choice(n_positions, min(max_fit_tokens, n_positions), replace=False)] = True
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = int(pad if pad is not None else windows[0][0])
    bar = progress_bar(len(windows), desc="calibrate-lm", unit="window", enabled=progress)
    try:
        with torch.inference_mode():
            zs, ys = [], []
            done = 0
            for batch in _batches(fit_windows, batch_size):
                z, y = _forward(model, batch, pad)
                rows = torch.from_numpy(np.flatnonzero(keep[done : done + len(y)])).to(z.device)
                done += len(y)
                zs.append(z.index_select(0, rows))
                ys.append(y.index_select(0, rows))
                bar.update(len(batch))
            # The logits' width, not config.vocab_size: some models pad their head.
            vocab, device = int(zs[0].shape[1]), zs[0].device
            fit = fit_temperature(torch.cat(zs), torch.cat(ys))
            del zs
            sides = [
                _Side(1.0, n_bins, vocab, classwise, device),
                _Side(1.0 / fit.temperature, n_bins, vocab, classwise, device),
            ]
            for batch in _batches(eval_windows, batch_size):
                z, y = _forward(model, batch, pad)
                _reduce(sides, z, y)
                bar.update(len(batch))
    finally:
        bar.close()
    smooth, note = _smooth_ece()
    before, after = (side.finish(smooth) for side in sides)
    return LMCalibration(
        temperature=fit.temperature,
        fit=fit,
        before=before,
        after=after,
        n_fit_tokens=int(keep.sum()),
        n_eval_tokens=before.summary.n_samples,
        n_texts=len(corpus),
        window=window,
        n_bins=n_bins,
        notes=() if note is None else (note,),
    )
