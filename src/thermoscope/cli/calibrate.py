"""``thermoscope calibrate``: fit a temperature on validation logits, print before/after metrics.

Inputs are ``.npy``, ``.npz`` (one array, or one named like the option:
``logits``, ``labels``, ``test_logits``, ``test_labels``) or ``.csv`` (comma
separated, one row per sample, ``#`` comments). Nothing is ever unpickled
(``allow_pickle=False``). ``.npy`` files above 256 MiB (or any with
``--stream``) are memory-mapped and streamed in chunks: the exact fit makes
one pass per Newton step and the metrics go through a
`CalibrationAccumulator`, so memory stays independent of the number of rows.

The table also shows the smooth ECE and Kumar et al.'s debiased calibration
error (in-memory inputs; "n/a" when streamed). ``--interval 0.95`` adds
confidence intervals: normal ones for NLL and Brier, percentile-bootstrap ones
(``--n-bootstrap``, ``--seed``) for the others; streamed inputs refuse it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import warnings
from typing import Any

import numpy as np

from thermoscope._typing import Array
from thermoscope.cli._args import CommandParser, add_subcommand
from thermoscope.cli._json import dumps

#: .npy inputs larger than this are streamed from disk instead of loaded.
_STREAM_BYTES = 256 * 2**20
#: Rows per chunk when streaming the metrics.
_CHUNK_ROWS = 65_536
_SUFFIXES = (".npy", ".npz", ".csv")

EXAMPLES = """\
  thermoscope calibrate --logits val.npy --labels val_labels.npy
  thermoscope calibrate --logits val.npy --labels val_labels.npy \\
      --test-logits test.npy --test-labels test_labels.npy --out temperature.json --plot rel.png
  thermoscope calibrate --logits val_probs.csv --labels val_labels.csv --probs --json
  thermoscope calibrate --logits val.npy --labels val_labels.npy --interval 0.95 --n-bootstrap 2000
"""

_METRICS = (
    ("ECE", "ece"),
    ("MCE", "mce"),
    ("smECE", "smece"),
    ("debiased CE (l2)", "debiased_ce"),
    ("NLL (nats)", "nll"),
    ("Brier", "brier"),
    ("accuracy", "accuracy"),
)
#: Metrics that get an interval (accuracy is not a calibration metric here).
_WITH_INTERVAL = ("ece", "mce", "smece", "debiased_ce", "nll", "brier")


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``calibrate`` subcommand."""
    p = add_subcommand(
        sub,
        "calibrate",
        help="fit a temperature on validation logits; print ECE/NLL/Brier before and after",
        description="Fit the temperature T minimising the validation NLL of softmax(logits / T) "
        "(exact convex solve), then print ECE, MCE, smooth ECE, debiased CE, NLL, Brier and "
        "accuracy before (T = 1) and after, on the validation split and optionally on a test "
        "split; with --interval, confidence intervals (normal for NLL and Brier, percentile "
        "bootstrap for the others).",
        examples=EXAMPLES,
    )
    p.add_argument("--logits", required=True, help="validation logits (N, C): .npy, .npz or .csv")
    p.add_argument("--labels", required=True, help="validation labels (N,), integers in [0, C)")
    p.add_argument("--test-logits", help="test logits, scored with the fitted T")
    p.add_argument("--test-labels", help="test labels (with --test-logits)")
    p.add_argument(
        "--probs", action="store_true", help="the inputs are probabilities; logits = log(p)"
    )
    p.add_argument("--out", help="save the fitted temperature as JSON (written atomically)")
    p.add_argument("--plot", help="save a before/after reliability diagram (e.g. rel.png)")
    p.add_argument("--n-bins", type=int, default=15, help="equal-width ECE bins (default 15)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream .npy inputs from disk in chunks (automatic above 256 MiB)",
    )
    p.add_argument(
        "--interval",
        type=float,
        metavar="LEVEL",
        help="print confidence intervals at this level, e.g. 0.95 (in-memory inputs only)",
    )
    p.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for --interval (default 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


# --------------------------------------------------------------------------- loading


def _check_path(path: str, option: str) -> pathlib.Path:
    p = pathlib.Path(path)
    if p.suffix.lower() not in _SUFFIXES:
        raise ValueError(
            f"`{option}` must be a .npy, .npz or .csv file, got {path!r} "
            f"(extension {p.suffix or 'none'!r})."
        )
    if p.is_dir():
        raise ValueError(f"`{option}` must be a file, got the folder {path!r}.")
    if not p.is_file():
        raise ValueError(f"`{option}` must be an existing file, got {path!r} (not found).")
    return p


def _load_array(path: str, option: str, *, mmap: bool = False, rows: bool = False) -> Array:
    """Load a numeric array from ``.npy``/``.npz``/``.csv`` without unpickling anything.

    With ``mmap=True`` a ``.npy`` file is memory-mapped instead of read.
    With ``rows=True`` (logits) a one-line CSV is one row, shape (1, C).
    Booleans are not numbers here, in memory or streamed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "y.csv").write_text("0\\n2\\n1\\n")
    >>> _load_array(str(d / "y.csv"), "--labels")
    array([0., 2., 1.])
    """
    p = _check_path(path, option)
    suffix = p.suffix.lower()
    key = option.lstrip("-").replace("-", "_")
    try:
        if suffix == ".npy":
            arr = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                names = list(npz.keys())
                if len(names) == 1:
                    arr = npz[names[0]]
                elif key in names:
                    arr = npz[key]
                else:
                    raise ValueError(
                        f"`{option}` must be a .npz holding one array or one named {key!r}, "
                        f"got {path!r} with arrays {names}."
                    )
        else:
            with warnings.catch_warnings():
                # An empty file is reported below, as an error naming the option.
                warnings.filterwarnings("ignore", "loadtxt: input contained no data")
                arr = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2 if rows else 1)
            if arr.size == 0:
                raise ValueError(f"`{option}` must not be empty, got the empty file {path!r}.")
    except ValueError as exc:
        if str(exc).startswith(f"`{option}`"):
            raise
        if "pickle" in str(exc):
            raise ValueError(
                f"`{option}` must hold plain numbers, got {path!r}, which needs pickle "
                "(an object array); it is never loaded with allow_pickle=True. Save it "
                "with np.save(path, np.asarray(x, dtype=float))."
            ) from None
        raise ValueError(
            f"`{option}` must be a readable {suffix} file, got {path!r}: {exc}"
        ) from None
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"`{option}` must be a readable {suffix} file, got {path!r}: {exc}"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
        kind = getattr(arr, "dtype", type(arr).__name__)
        raise ValueError(f"`{option}` must hold a numeric array, got {kind} in {path!r}.")
    return arr


def _inputs(
    logits_path: str, labels_path: str, logits_opt: str, labels_opt: str, args: argparse.Namespace
) -> tuple[Array, Array, bool]:
    """(logits or memmap, labels, streaming) for one split, validated with the options' names."""
    from thermoscope._validation import check_labels, check_logits, check_probabilities

    stream = pathlib.Path(logits_path).suffix.lower() == ".npy" and (
        args.stream or _check_path(logits_path, logits_opt).stat().st_size > _STREAM_BYTES
    )
    z = _load_array(logits_path, logits_opt, mmap=stream, rows=True)
    y = _load_array(labels_path, labels_opt)
    if z.ndim != 2:
        raise ValueError(
            f"`{logits_opt}` must be a 2-D array (samples, classes), got shape {z.shape}."
        )
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"`{logits_opt}` must not be empty, got shape {z.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    labels = check_labels(y, z.shape[1], (z.shape[0],), labels_opt)
    if stream:
        if args.probs:
            raise ValueError(
                f"`{logits_opt}` must hold logits when streamed (--stream, or a .npy above "
                "256 MiB), got --probs; convert once with np.log(p) and save the logits."
            )
        return z, labels, True
    z = np.asarray(z, dtype=np.float64)
    if args.probs:
        check_probabilities(z, logits_opt, axis=1)
        with np.errstate(divide="ignore"):  # log 0 = -inf: a masked class, on purpose
            z = np.log(z)
        true = z[np.arange(z.shape[0]), labels]
        if np.any(np.isneginf(true)):
            i = int(np.argmax(np.isneginf(true)))
            raise ValueError(
                f"`{logits_opt}` must give each row's label a probability > 0 (the NLL is "
                f"infinite at every T otherwise), got 0 at row {i}."
            )
    else:
        check_logits(z, logits_opt)
    return z, labels, False


def _check_plot(path: str) -> None:
    """``--plot``: a writable file with an image suffix matplotlib can write."""
    from matplotlib.backend_bases import FigureCanvasBase

    from thermoscope._files import check_writable_file

    suffix = pathlib.Path(path).suffix.lower().lstrip(".") or "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(
            f"`--plot` must end in an image suffix ({', '.join(sorted(formats))}), got {path!r}."
        )
    check_writable_file(path, "--plot")


# --------------------------------------------------------------------------- metrics


def _check_interval_args(args: argparse.Namespace) -> None:
    """``--interval`` in (0, 1), ``--n-bootstrap`` >= 1, ``--seed`` >= 0, before any work."""
    from thermoscope.calibration.intervals import MAX_BOOTSTRAP

    if args.interval is not None and not 0.0 < args.interval < 1.0:
        raise ValueError(f"`--interval` must be a number in (0, 1), got {args.interval}.")
    if not 1 <= args.n_bootstrap <= MAX_BOOTSTRAP:
        raise ValueError(
            f"`--n-bootstrap` must be an integer in [1, {MAX_BOOTSTRAP}], got {args.n_bootstrap}."
        )
    if args.seed < 0:
        raise ValueError(f"`--seed` must be an integer >= 0, got {args.seed}.")


def _summaries(
    z: Array, y: Array, t: float, streaming: bool, n_bins: int, args: argparse.Namespace
) -> tuple[Any, Any]:
    """Metrics at T = 1 and at ``t``: in memory, or streamed through accumulators."""
    from thermoscope._progress import progress_iter
    from thermoscope.calibration import CalibrationAccumulator
    from thermoscope.calibration.metrics import calibration_summary

    if not streaming:
        options = {
            "n_bins": n_bins,
            "from_logits": True,
            "interval": args.interval,
            "n_bootstrap": args.n_bootstrap,
            "seed": args.seed,
        }
        return calibration_summary(z, y, **options), calibration_summary(z / t, y, **options)
    before = CalibrationAccumulator(n_bins=n_bins, from_logits=True)
    after = CalibrationAccumulator(n_bins=n_bins, from_logits=True)
    starts = range(0, z.shape[0], _CHUNK_ROWS)
    for lo in progress_iter(starts, desc="metrics", unit="chunk", total=len(starts)):
        chunk = np.asarray(z[lo : lo + _CHUNK_ROWS], dtype=np.float64)
        labels = y[lo : lo + _CHUNK_ROWS]
        before.update(chunk, labels)
        after.update(chunk, labels, temperature=t)
    return before.compute(), after.compute()


def _value(summary: Any, key: str) -> float | None:
    """A metric as a float; None where the summary does not have it (streamed smECE)."""
    value = getattr(summary, key)
    return None if value is None else float(value)


def _cell(summary: Any, key: str) -> object:
    value = _value(summary, key)
    if value is None:
        return "n/a"
    intervals = summary.intervals
    if intervals is None or key not in intervals:
        return f"{value:.4f}"
    iv = intervals[key]
    return f"{value:.4f} [{iv.low:.4f}, {iv.high:.4f}]"


def _table_rows(splits: dict[str, tuple[Any, Any]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for label, key in _METRICS:
        row: list[object] = [label]
        for before, after in splits.values():
            row += [_cell(before, key), _cell(after, key)]
        rows.append(row)
    return rows


def _json_intervals(summary: Any) -> dict[str, dict[str, object]]:
    return {
        key: {"low": iv.low, "high": iv.high, "method": iv.method}
        for key, iv in (summary.intervals or {}).items()
        if key in _WITH_INTERVAL
    }


def run(args: argparse.Namespace) -> str:
    """Fit, score, save and format for parsed ``calibrate`` arguments."""
    from thermoscope._files import check_writable_file
    from thermoscope._tables import format_table
    from thermoscope.calibration import TemperatureBoundWarning, TemperatureScaler
    from thermoscope.calibration._inputs import MAX_BINS

    if args.n_bins < 1:
        raise ValueError(f"`--n-bins` must be an integer >= 1, got {args.n_bins}.")
    if args.n_bins > MAX_BINS:
        raise ValueError(f"`--n-bins` must be an integer <= {MAX_BINS}, got {args.n_bins}.")
    _check_interval_args(args)
    # Where the results go is checked before the fit, not after it.
    if args.out:
        check_writable_file(args.out, "--out")
    if args.plot:
        _check_plot(args.plot)
    if (args.test_logits is None) != (args.test_labels is None):
        raise ValueError(
            "`--test-labels` must be given together with `--test-logits` (both or neither), "
            f"got only {'--test-logits' if args.test_logits else '--test-labels'}."
        )
    z, y, streaming = _inputs(args.logits, args.labels, "--logits", "--labels", args)
    if streaming and args.interval is not None:
        raise ValueError(
            "`--interval` must be left out for streamed inputs (--stream, or a .npy above "
            f"256 MiB): intervals need the data in memory, got --interval {args.interval}."
        )
    test = None
    if args.test_logits is not None:
        test = _inputs(args.test_logits, args.test_labels, "--test-logits", "--test-labels", args)
        if test[0].shape[1] != z.shape[1]:
            raise ValueError(
                f"`--test-logits` must have {z.shape[1]} columns like `--logits`, "
                f"got {test[0].shape[1]}."
            )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TemperatureBoundWarning)
        scaler = TemperatureScaler(verbose=streaming).fit(z, y)
    for w in caught:
        if issubclass(w.category, TemperatureBoundWarning):
            print(f"thermoscope calibrate: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    t = scaler.temperature_
    if test is not None and test[2] and args.interval is not None:
        raise ValueError(
            "`--interval` must be left out for a streamed `--test-logits`: intervals need "
            f"the data in memory, got --interval {args.interval}."
        )
    splits = {"validation": _summaries(z, y, t, streaming, args.n_bins, args)}
    if test is not None:
        splits["test"] = _summaries(*test[:2], t, test[2], args.n_bins, args)
    saved = []
    if args.out:
        scaler.to_json(args.out)
        saved.append(f"temperature saved to {args.out}")
    if args.plot:
        from thermoscope.plots import plot_reliability

        name = "test" if test is not None else "validation"
        before, after = splits[name]
        plot_reliability(
            {"before (T = 1)": before.curve, f"after (T = {t:.3g})": after.curve},
            title=f"Reliability on the {name} split",
            save=args.plot,
        )
        saved.append(f"reliability diagram saved to {args.plot}")
    if args.json:
        return dumps(
            {
                "temperature": t,
                "n_iter": scaler.n_iter_,
                "n_bins": args.n_bins,
                "streamed": streaming,
                "interval": args.interval,
                "n_bootstrap": args.n_bootstrap if args.interval is not None else None,
                "seed": args.seed if args.interval is not None else None,
                **{
                    name: {
                        "n_samples": before.n_samples,
                        "before": {key: _value(before, key) for _, key in _METRICS},
                        "after": {key: _value(after, key) for _, key in _METRICS},
                        **(
                            {
                                "intervals": {
                                    "before": _json_intervals(before),
                                    "after": _json_intervals(after),
                                }
                            }
                            if args.interval is not None
                            else {}
                        ),
                    }
                    for name, (before, after) in splits.items()
                },
                "out": args.out,
                "plot": args.plot,
            }
        )
    headers = ["metric"]
    for name in splits:
        headers += [f"{name} before", f"{name} after"]
    lines = [
        f"fitted temperature T = {t:.6g} ({scaler.n_iter_} Newton passes over "
        f"{z.shape[0]} validation rows{', streamed' if streaming else ''})",
        "",
        format_table(headers, _table_rows(splits)),
        f"before = T 1, after = T {t:.4g}; ECE with {args.n_bins} equal-width bins; "
        "accuracy never changes with T",
    ]
    if args.interval is not None:
        lines.append(
            f"[low, high]: {args.interval:g} intervals; normal for NLL and Brier, percentile "
            f"bootstrap ({args.n_bootstrap} resamples, seed {args.seed}) for the others"
        )
    if streaming:
        lines.append("smECE and debiased CE: n/a when streamed (they need the data in memory)")
    lines += saved
    return "\n".join(lines)
