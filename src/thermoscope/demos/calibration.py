"""Calibration demo on real data: scikit-learn's digits, before and after temperature scaling.

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
from typing import Any

import numpy as np

from thermoscope._typing import Array
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir

__all__ = ["calibration_demo", "overconfident_mlp"]

#: Logistic-regression strengths C (inverse L2 penalty); the first is the reference.
C_VALUES = (100.0, 10.0, 1.0, 0.1, 0.01)
C_VALUES_QUICK = (100.0, 1.0, 0.01)


def _mlp_logits(mlp: Any, X: Array) -> Array:
    """The MLP's pre-softmax outputs (``predict_proba`` would underflow to exact 0s)."""
    a = X
    for W, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
        a = np.maximum(a @ W + b, 0.0)  # relu, MLPClassifier's default activation
    return np.asarray(a @ mlp.coefs_[-1] + mlp.intercepts_[-1])


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
        for _ in range(EPOCHS):
            mlp.partial_fit(X_train, y_train, classes=np.arange(10))
    return mlp, split


def calibration_demo(
    out_dir: pathlib.Path | None = None, *, seed: int = 0, quick: bool = False
) -> str:
    """Run the digits calibration demo; return its report text, save reliability diagrams.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Where to write ``calibration_before.png``, ``calibration_after.png``
        and ``calibration_reliability.png`` (before/after overlaid). None
        writes no files.
    seed : int, default 0
        Seeds the data split and the network's initialisation and shuffling.
    quick : bool, default False
        Fewer regularisation strengths (for tests); the network is the same.

    Returns
    -------
    str
        The before/after table, the fitted ``T`` and the regularisation table.

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
    mlp, (X_train, X_val, X_test, y_train, y_val, y_test) = overconfident_mlp(seed=seed)
    z_val, z_test = _mlp_logits(mlp, X_val), _mlp_logits(mlp, X_test)
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
        "Calibration of an overconfident classifier (scikit-learn digits, seed "
        f"{seed}: {len(y_train)} train / {len(y_val)} validation / {len(y_test)} test)",
        f"MLP (128 relu units, alpha=0, {EPOCHS} Adam epochs): training loss {mlp.loss_:.2e}",
        f"fitted temperature T = {t:.4f} on the validation split "
        f"({scaler.n_iter_} Newton passes, exact)",
        "",
        format_table(["test split", "before (T = 1)", f"after (T = {t:.3f})"], rows),
        "",
    ]

    if out is not None:
        from thermoscope.plots import plot_reliability

        plot_reliability(
            {"before (T = 1)": before.curve},
            title="Digits MLP, test split, before temperature scaling",
            save=out / "calibration_before.png",
        )
        plot_reliability(
            {f"after (T = {t:.2f})": after.curve},
            title="Digits MLP, test split, after temperature scaling",
            save=out / "calibration_after.png",
        )
        plot_reliability(
            {"before (T = 1)": before.curve, f"after (T = {t:.2f})": after.curve},
            title="Digits MLP: reliability before and after temperature scaling",
            save=out / "calibration_reliability.png",
        )
        lines += [f"reliability diagrams written to {out}", ""]

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
        "L2 regularisation acts like a temperature (logistic regression, test split):",
        "stronger regularisation (smaller C) shrinks the weights and so the logits; the",
        f"temperature T_C that gives the same mean confidence as C = {c_values[0]:g} "
        "falls with the weight-norm ratio,",
        "and most predictions agree: regularisation is mostly a temperature (not exactly:",
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
