"""Calibration demo on real data: scikit-learn's digits, before and after temperature scaling.

0. The convincing case: an MLP that memorised training labels of which 40%
   were replaced by a wrong digit (`noisy_label_mlp`). On clean test digits
   it claims far more confidence than its accuracy: a large, real
   miscalibration. ``T`` fitted on a clean validation split removes most of
   it; ECE, NLL and Brier before and after, and NLL and ECE against ``T``
   (with ``T = 1`` and the fitted ``T`` marked) are shown.
1. An unregularised MLP (``alpha=0``) is trained with Adam until its training
   loss is near zero: the textbook overconfident classifier. ``T`` is fitted
   on a validation split with the exact solver, and the test split is scored
   before and after: ECE, MCE, NLL, Brier and accuracy (which temperature
   cannot change; the demo asserts it).
2. The seeds' claim "L2 regularisation acts like a temperature": logistic
   regression at several strengths ``C``. Stronger regularisation shrinks
   the weights, hence the logits, hence the confidence; for each model the
   temperature that maps its mean test confidence onto the least regularised
   model's is solved exactly (`temperature_for_confidence`) and compared with
   the ratio of weight norms, the temperature a pure rescaling would need.

Everything is seeded and offline (``load_digits`` ships with scikit-learn).
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import numpy as np

from thermoscope._typing import Array
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir

__all__ = [
    "LABEL_NOISE",
    "calibration_demo",
    "mlp_logits",
    "noisy_label_mlp",
    "overconfident_mlp",
]

#: Logistic-regression strengths C (inverse L2 penalty); the first is the reference.
C_VALUES = (100.0, 10.0, 1.0, 0.1, 0.01)
C_VALUES_QUICK = (100.0, 1.0, 0.01)


def mlp_logits(mlp: Any, X: Array) -> Array:
    """A fitted scikit-learn ``MLPClassifier``'s pre-softmax outputs for ``X`` (relu layers).

    ``predict_proba`` would underflow to exact 0s for a confident network;
    these logits are what temperature scaling divides.

    Examples
    --------
    >>> from sklearn.neural_network import MLPClassifier
    >>> X, y = np.eye(3), np.arange(3)
    >>> mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    >>> import warnings
    >>> with warnings.catch_warnings():  # 5 iterations do not converge, and need not
    ...     warnings.simplefilter("ignore")
    ...     z = mlp_logits(mlp.fit(X, y), X)
    >>> bool(np.allclose(np.exp(z) / np.exp(z).sum(1, keepdims=True), mlp.predict_proba(X)))
    True
    """
    a = X
    for W, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
        a = np.maximum(a @ W + b, 0.0)  # relu, MLPClassifier's default activation
    return np.asarray(a @ mlp.coefs_[-1] + mlp.intercepts_[-1])


_mlp_logits = mlp_logits  # the name tests/test_calibration_demo.py imports


def _splits(seed: int) -> tuple[Array, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=0.5, random_state=seed, stratify=y
    )
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    return X_train, X_val, X_test, y_train, y_val, y_test


#: Adam epochs of the demo's network: enough for a training loss near zero.
EPOCHS = 150


def overconfident_mlp(*, seed: int = 0) -> tuple[Any, tuple[Array, ...]]:
    """The demo's network and its data split ``(X_train, X_val, X_test, y_train, y_val, y_test)``.

    No weight decay (``alpha=0``), trained for `EPOCHS` epochs until the
    training loss is near zero. ``partial_fit`` runs exactly one epoch per
    call, so the budget is fixed and no convergence warning is involved.

    Examples
    --------
    >>> mlp, split = overconfident_mlp(seed=0)
    >>> bool(mlp.loss_ < 1e-2), [len(part) for part in split[3:]]
    (True, [898, 449, 450])
    """
    from sklearn.neural_network import MLPClassifier

    split = _splits(check_seed(seed))
    X_train, y_train = split[0], split[3]
    mlp = MLPClassifier(
        hidden_layer_sizes=(128,), alpha=0.0, learning_rate_init=1e-2, random_state=seed
    )
    # The matrices are tiny (898 x 64 x 128): extra BLAS threads only spin and
    # wait, three times slower on a busy 2-core machine. threadpoolctl ships
    # with scikit-learn; the limit is undone on exit.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _train(mlp, X_train, y_train, EPOCHS)
    return mlp, split


def _train(mlp: Any, X: Array, y: Array, epochs: int) -> None:
    """``epochs`` passes of ``partial_fit``, stopped by Ctrl-C.

    scikit-learn's MLP catches ``KeyboardInterrupt`` in each call and only
    warns ("Training interrupted by user"), so a loop of calls would run on
    after Ctrl-C; the warning is turned back into the interrupt.
    """
    for _ in range(epochs):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            mlp.partial_fit(X, y, classes=np.arange(10))
        for w in seen:
            if "interrupted by user" in str(w.message):
                raise KeyboardInterrupt
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


#: Share of training labels replaced by a wrong digit in the convincing case.
LABEL_NOISE = 0.4
#: Adam epochs of the noisy-label network (and with ``quick``): enough to fit every label.
NOISY_EPOCHS, NOISY_EPOCHS_QUICK = 300, 150


def noisy_label_mlp(*, seed: int = 0, quick: bool = False) -> tuple[Any, tuple[Array, ...]]:
    """A network that memorised noisy labels, and the split ``(X_train, X_val, X_test, ...)``.

    The split is `overconfident_mlp`'s. A fraction `LABEL_NOISE` of the
    training labels is replaced by a different digit drawn uniformly (seeded),
    then an unregularised MLP (``alpha=0``, 128 relu units) is trained for
    `NOISY_EPOCHS` epochs (`NOISY_EPOCHS_QUICK` with ``quick``) until it fits
    the noisy labels. Validation and test labels stay clean. The returned
    split holds the noisy training labels.

    Examples
    --------
    >>> mlp, split = noisy_label_mlp(seed=0, quick=True)  # doctest: +SKIP
    >>> float(mlp.score(split[0], split[3])) > 0.95  # doctest: +SKIP
    True

    (Skipped here: tests/test_plots_calibration_showcase.py trains it and checks it.)
    """
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    seed = check_seed(seed)
    X_train, X_val, X_test, y_train, y_val, y_test = _splits(seed)
    rng = np.random.default_rng(seed)
    noisy = y_train.copy()
    flip = rng.random(noisy.size) < LABEL_NOISE
    # Adding 1..9 modulo 10 gives a uniformly drawn *different* digit.
    noisy[flip] = (noisy[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
    mlp = MLPClassifier(
        hidden_layer_sizes=(128,), alpha=0.0, learning_rate_init=1e-2, random_state=seed
    )
    with threadpool_limits(limits=1, user_api="blas"):  # see overconfident_mlp
        _train(mlp, X_train, noisy, NOISY_EPOCHS_QUICK if quick else NOISY_EPOCHS)
    return mlp, (X_train, X_val, X_test, noisy, y_val, y_test)


_LEAD = "\n".join(
    [
        "What you see: two classifiers whose confidence is wrong, before and after temperature "
        "scaling: one that memorised noisy labels (badly overconfident) and a clean one "
        "(slightly overconfident).",
        "Why it matters: a model that says 90% should be right 90% of the time. Dividing "
        "the logits by one T fitted on held-out data restores that without changing a single "
        "prediction.",
        "Try it: thermoscope calibrate --logits val.npy --labels val_labels.npy fits T on "
        "your own model's validation logits.",
    ]
)


def _showcase(seed: int, quick: bool) -> tuple[list[str], dict[str, Any]]:
    """Section 1: the noisy-label network before and after T; its text and figure data."""
    from thermoscope._tables import format_table
    from thermoscope.calibration import TemperatureScaler, calibration_summary

    mlp, (X_train, X_val, X_test, noisy, y_val, y_test) = noisy_label_mlp(seed=seed, quick=quick)
    z_val, z_test = mlp_logits(mlp, X_val), mlp_logits(mlp, X_test)
    scaler = TemperatureScaler().fit(z_val, y_val)
    t = float(scaler.temperature_)
    before = calibration_summary(z_test, y_test, from_logits=True)
    after = calibration_summary(np.asarray(scaler.transform(z_test)), y_test, from_logits=True)
    assert before.accuracy == after.accuracy, (before.accuracy, after.accuracy)
    conf = (_mean_conf(z_test, 1.0), _mean_conf(z_test, t))
    rows = [
        ["expected calibration error (ECE, 15 bins)", before.ece, after.ece],
        ["negative log-likelihood (nats)", before.nll, after.nll],
        ["mean squared error of the probabilities (Brier)", before.brier, after.brier],
        ["average confidence", conf[0], conf[1]],
        ["top-1 accuracy (T cannot change it)", before.accuracy, after.accuracy],
    ]
    fit_rate = float(np.mean(mlp.predict(X_train) == noisy))
    epochs = NOISY_EPOCHS_QUICK if quick else NOISY_EPOCHS
    lines = [
        _heading("1. A network that memorised noisy labels: large miscalibration"),
        f"An MLP without weight decay, trained {epochs} epochs on {len(noisy)} digits of "
        f"which {LABEL_NOISE:.0%} carry a wrong label, fits {fit_rate:.0%} of those labels. "
        f"On clean test digits it claims {conf[0]:.0%} confidence on average and is right "
        f"{before.accuracy:.0%} of the time.",
        f"Temperature fitted on the clean validation split ({len(y_val)} digits): T = {t:.4f}.",
        format_table(["test split", "before (T = 1)", f"after (T = {t:.3f})"], rows),
        f"Takeaway: one number fixes most of it. ECE falls {before.ece / after.ece:.1f}-fold "
        f"({before.ece:.3f} -> {after.ece:.3f}), NLL from {before.nll:.3f} to "
        f"{after.nll:.3f} and Brier from {before.brier:.3f} to {after.brier:.3f}, with the "
        "same predictions.",
        "",
    ]
    data = {"z_val": z_val, "z_test": z_test, "y_test": y_test, "t": t}
    data |= {"before": before, "after": after}
    return lines, data


def _heading(title: str) -> str:
    return f"== {title} " + "=" * max(0, 72 - len(title))


def _metrics_figure(cases: dict[str, tuple[Array, Array, float]]) -> Any:
    """NLL and ECE of each case's test logits against T, with T = 1 and the fitted T marked."""
    from matplotlib.figure import Figure

    from thermoscope.calibration import expected_calibration_error, negative_log_likelihood

    grid = np.geomspace(0.5, 8.0, 61)
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    ax_nll, ax_ece = fig.subplots(1, 2, sharex=True)
    colors = ("#d62728", "#1f77b4")
    for (name, (z, y, t_fit)), color in zip(cases.items(), colors, strict=False):
        temps = np.sort(np.r_[grid, 1.0, t_fit])
        nll = [float(negative_log_likelihood(z, y, from_logits=True, temperature=t)) for t in temps]
        ece = [float(expected_calibration_error(z / t, y, from_logits=True)) for t in temps]
        for ax, values in ((ax_nll, nll), (ax_ece, ece)):
            ax.plot(temps, values, color=color, label=name)
            at = {float(tt): v for tt, v in zip(temps, values, strict=True)}
            ax.plot([1.0], [at[1.0]], "o", color=color, markerfacecolor="white")
            ax.plot([t_fit], [at[float(t_fit)]], "o", color=color)
    for ax, ylabel in ((ax_nll, "test NLL (nats)"), (ax_ece, "test ECE (15 bins)")):
        ax.set_xscale("log")
        ax.set_xticks([0.5, 1, 2, 4, 8], ["0.5", "1", "2", "4", "8"])
        ax.minorticks_off()
        ax.set_xlabel("temperature T (log scale)")
        ax.set_ylabel(ylabel)
        ax.axvline(1.0, color="0.6", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_nll.legend(loc="upper right", fontsize=8)
    ax_nll.set_title("NLL: open circle T = 1, dot the fitted T")
    ax_ece.set_title("ECE: the fitted T sits near the minimum")
    fig.suptitle("The fitted temperature lowers both NLL and ECE on unseen data")
    return fig


def calibration_demo(
    out_dir: pathlib.Path | None = None, *, seed: int = 0, quick: bool = False
) -> str:
    """Run the digits calibration demo; return its report text, save reliability diagrams.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Where to write ``calibration_before.png`` and ``calibration_after.png``
        (reliability diagrams of the noisy-label network) and
        ``calibration_reliability.png`` (test NLL and ECE against T for both
        networks). None writes no files.
    seed : int, default 0
        Seeds the data split and the network's initialisation and shuffling.
    quick : bool, default False
        Fewer regularisation strengths and fewer epochs for the noisy-label
        network (for tests); the clean network is the same.

    Returns
    -------
    str
        The before/after tables and fitted ``T`` of both networks and the
        regularisation table.

    Examples
    --------
    >>> print(calibration_demo(quick=True))  # doctest: +SKIP
    Calibration of an overconfident classifier (scikit-learn digits, seed 0: ...

    (Skipped here: tests/test_calibration_demo.py runs it and checks its numbers.)
    """
    from sklearn.linear_model import LogisticRegression

    from thermoscope._tables import format_table
    from thermoscope.calibration import (
        TemperatureScaler,
        calibration_summary,
        temperature_for_confidence,
    )

    seed = check_seed(seed)
    out = prepare_out_dir(out_dir)  # before training: a bad folder fails fast
    show_lines, show = _showcase(seed, quick)
    mlp, (X_train, X_val, X_test, y_train, y_val, y_test) = overconfident_mlp(seed=seed)
    z_val, z_test = mlp_logits(mlp, X_val), mlp_logits(mlp, X_test)
    scaler = TemperatureScaler().fit(z_val, y_val)
    t = scaler.temperature_
    before = calibration_summary(z_test, y_test, from_logits=True)
    after = calibration_summary(np.asarray(scaler.transform(z_test)), y_test, from_logits=True)
    # Temperature divides every logit of a row by the same T > 0: the argmax,
    # hence every prediction and the accuracy, cannot change.
    assert before.accuracy == after.accuracy, (before.accuracy, after.accuracy)

    rows = [
        [name, getattr(before, key), getattr(after, key)]
        for name, key in (
            ("ECE (15 bins)", "ece"),
            ("MCE", "mce"),
            ("NLL (nats)", "nll"),
            ("Brier", "brier"),
            ("accuracy", "accuracy"),
        )
    ]
    rows.insert(4, ["mean confidence", _mean_conf(z_test, 1.0), _mean_conf(z_test, t)])
    lines = [
        _LEAD,
        "",
        *show_lines,
        _heading("2. A clean network trained to zero loss: small miscalibration"),
        "Calibration of an overconfident classifier (scikit-learn digits, seed "
        f"{seed}: {len(y_train)} train / {len(y_val)} validation / {len(y_test)} test)",
        f"MLP (128 relu units, alpha=0, {EPOCHS} Adam epochs): training loss {mlp.loss_:.2e}",
        f"fitted temperature T = {t:.4f} on the validation split "
        f"({scaler.n_iter_} Newton passes, exact)",
        format_table(["test split", "before (T = 1)", f"after (T = {t:.3f})"], rows),
        "In plain words: this network is right almost always, so there is little to fix. "
        f"T trims its confidence from {_mean_conf(z_test, 1.0):.3f} towards its accuracy; "
        f"the clear gain is in NLL ({before.nll:.3f} -> {after.nll:.3f}), since the rare "
        "confident mistakes cost less. ECE and Brier barely move (either way): with "
        f"{len(y_test)} test digits they are within noise of each other.",
        "",
    ]

    if out is not None:
        from thermoscope.plots import plot_reliability, save_figure

        big, small = show["before"], show["after"]
        t_show = show["t"]
        save_figure(
            plot_reliability(
                {"before (T = 1)": big.curve},
                title=f"Before: claims {_mean_conf(show['z_test'], 1.0):.0%}, "
                f"right {big.accuracy:.0%} of the time",
            ),
            out / "calibration_before.png",
            caption="Noisy-label network, test split, T = 1: the points sit far below the "
            "diagonal (overconfident). Grey: bins with too few samples to trust.",
            rank=1,
            place="1.",
        )
        save_figure(
            plot_reliability(
                {f"after (T = {t_show:.2f})": small.curve},
                title=f"After T = {t_show:.2f}: confidence tracks accuracy",
            ),
            out / "calibration_after.png",
            caption="The same predictions with the logits divided by the fitted T: the "
            "points move onto the diagonal and the confidence histogram spreads out.",
            rank=2,
            place="1.",
        )
        save_figure(
            _metrics_figure(
                {
                    f"noisy labels (T = {t_show:.2f})": (
                        show["z_test"],
                        show["y_test"],
                        t_show,
                    ),
                    f"clean digits (T = {t:.2f})": (z_test, y_test, t),
                }
            ),
            out / "calibration_reliability.png",
            caption="Test NLL and ECE of both networks as T varies. The fitted T (from "
            "validation data) lands near the best test NLL; the noisy network gains most.",
            rank=3,
            place="1.",
        )

    # 2. L2 regularisation acts like a temperature.
    c_values = C_VALUES_QUICK if quick else C_VALUES
    fits = []
    for c in c_values:
        model = LogisticRegression(C=c, max_iter=10_000).fit(X_train, y_train)
        z = model.decision_function(X_test)
        conf = _mean_conf(z, 1.0)
        fits.append((c, model, z, conf))
    _, ref_model, ref_z, ref_conf = fits[0]
    ref_norm = float(np.linalg.norm(ref_model.coef_))
    reg_rows = []
    for c, model, z, conf in fits:
        t_c = 1.0 if model is ref_model else temperature_for_confidence(z, ref_conf)
        agree = float(np.mean(np.argmax(z, axis=1) == np.argmax(ref_z, axis=1)))
        reg_rows.append(
            [
                f"{c:g}",
                conf,
                f"{t_c:.4f}",
                f"{float(np.linalg.norm(model.coef_)) / ref_norm:.4f}",
                float(model.score(X_test, y_test)),
                agree,
            ]
        )
    lines += [
        _heading("3. L2 regularisation acts like a temperature"),
        "Logistic regression at several strengths C (test split). Stronger regularisation "
        "(smaller C) shrinks the weights and so the logits; the temperature T_C that gives "
        f"the same mean confidence as C = {c_values[0]:g} falls with the weight-norm ratio, "
        "and most predictions agree: regularisation is mostly a temperature (not exactly: "
        "it also turns the weights a little, which changes some predictions).",
        "",
        format_table(
            ["C", "mean conf", "T_C (match conf)", "|W_C| / |W_ref|", "accuracy", "same argmax"],
            reg_rows,
        ),
    ]
    return "\n".join(lines)


def _mean_conf(z: Array, t: float) -> float:
    """Mean max-probability of ``softmax(z / t)``: what the model claims on average."""
    from thermoscope.core import softmax

    return float(np.mean(np.max(softmax(z, t), axis=1)))
