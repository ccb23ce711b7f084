"""``TemperatureScaler``: temperature scaling as a scikit-learn estimator on logits, saved as JSON.

The fit itself is :func:`thermoscope.calibration.fit.fit_temperature`; this
module adds the estimator protocol (``fit``/``transform``/``predict_proba``),
the alternative ECE objective and a small JSON file format.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._files import write_text_atomic
from thermoscope._params import Params
from thermoscope._typing import Array
from thermoscope._validation import as_float, check_logits
from thermoscope.calibration._inputs import (
    check_choice,
    check_n_bins,
    is_dask_array,
    logits_and_labels,
)
from thermoscope.calibration.fit import MAX_TEMPERATURE, MIN_TEMPERATURE, _check_bounds, _fit_nll
from thermoscope.calibration.metrics import expected_calibration_error
from thermoscope.core import softmax

if TYPE_CHECKING:
    import torch

__all__ = ["NotFittedError", "TemperatureScaler"]

#: JSON format tag and version written by `TemperatureScaler.to_json`.
JSON_FORMAT = "thermoscope.temperature"
JSON_VERSION = 1
_OBJECTIVES = ("nll", "ece")


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (same bases as scikit-learn's).

    When scikit-learn is installed the error raised is also an instance of
    ``sklearn.exceptions.NotFittedError``, so either ``except`` clause catches it.

    Examples
    --------
    >>> try:
    ...     TemperatureScaler().predict([[0.0, 1.0]])
    ... except NotFittedError as exc:
    ...     print(type(exc).__name__)
    NotFittedError
    """


@functools.cache
def _not_fitted_class() -> type[NotFittedError]:
    """Our `NotFittedError`, also a scikit-learn ``NotFittedError`` when that imports."""
    try:
        from sklearn.exceptions import NotFittedError as SklearnNotFitted
    except ImportError:
        return NotFittedError

    def reduce(self: BaseException) -> tuple[Any, ...]:
        # Pickles as the plain thermoscope class (the combined one is made at run time).
        return (NotFittedError, self.args)

    return type(
        "NotFittedError",
        (NotFittedError, SklearnNotFitted),
        {"__module__": __name__, "__qualname__": "NotFittedError", "__reduce__": reduce},
    )


def not_fitted_error(message: str) -> NotFittedError:
    """The exception to raise for a method called before ``fit`` (see `NotFittedError`)."""
    return _not_fitted_class()(message)


def check_fit_target(y: Any, owner: str) -> None:
    """Refuse a missing ``y`` with scikit-learn's phrase, so its estimator checks recognise it."""
    if y is None:
        raise ValueError(
            f"`y` must be the labels, one per row ({owner} requires y to be passed, but the "
            "target y is None), got None."
        )


def check_dense(x: Any, name: str) -> None:
    """Refuse a scipy sparse matrix or array with a message that says so."""
    if type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"`{name}` must be a dense array (sparse input is not supported: the logits of "
            f"every class are needed; call .toarray()), got {type(x).__name__}."
        )


def _host_input(x: Any, name: str) -> Any:
    """``x`` unchanged if numpy, torch or Dask, else ``np.asarray(x)`` (lists, array-likes)."""
    check_dense(x, name)
    if isinstance(x, np.ndarray) or is_torch(x) or is_dask_array(x):
        return x
    return np.asarray(x)


def _fit_ece(
    logits: Any, labels: Any, t_nll: float, *, n_bins: int, lo_t: float, hi_t: float
) -> float:
    """Minimise ECE over T by a log grid around the NLL optimum, refined by bounded Brent."""
    z, y = logits_and_labels(logits, labels, "y")
    z = np.asarray(z, dtype=np.float64)

    def ece(log_t: float) -> float:
        probs = kernel.softmax(z, math.exp(log_t), 1)
        return float(expected_calibration_error(probs, y, n_bins=n_bins))

    center = math.log(t_nll)
    lo, hi = (
        max(center - math.log(10.0), math.log(lo_t)),
        min(center + math.log(10.0), math.log(hi_t)),
    )
    grid = np.linspace(lo, hi, 61)
    values = [ece(u) for u in grid]
    k = int(np.argmin(values))
    left, right = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    from scipy import optimize  # loaded on first use: `import thermoscope` stays light

    best = optimize.minimize_scalar(ece, bounds=(left, right), method="bounded")
    log_t = float(best.x) if best.fun <= values[k] else float(grid[k])
    return math.exp(log_t)


class TemperatureScaler(Params):
    """Temperature scaling as a scikit-learn-compatible estimator on logits.

    ``fit(logits, y)`` finds ``T``; ``transform`` returns ``logits / T`` and
    ``predict_proba`` returns ``softmax(logits / T)``. scikit-learn is not
    imported: the class follows its conventions (keyword-only ``__init__``
    that only stores, ``get_params``/``set_params``, trailing-underscore fitted
    attributes), so ``sklearn.base.clone`` and pipelines work.

    Parameters
    ----------
    objective : {"nll", "ece"}, default "nll"
        ``"nll"``: the exact convex fit (`fit_temperature`). ``"ece"``:
        minimise top-label ECE with ``n_bins`` equal-width bins, searched on a
        61-point log grid over ``[T_nll / 10, 10 T_nll]`` and refined with
        bounded Brent. ECE is neither smooth nor convex in ``T``: that is a
        careful search, not a certificate; NLL is the recommended objective.
    min_temperature, max_temperature : float, default 1e-4 and 1e4
        Bounds on ``T`` (see `fit_temperature`).
    max_iter : int, default 100
        Cap on solver passes over the data.
    n_bins : int, default 15
        Bins for ``objective="ece"``.
    verbose : bool, default False
        Show a progress bar (stderr, terminals only) for each pass over a
        memory-mapped input.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature.
    n_iter_ : int
        Passes over the data made by the NLL solver.
    n_classes_ : int
        Number of classes (columns) seen in ``fit``.
    n_features_in_ : int
        The same number, under scikit-learn's name: later calls must pass
        logits with this many columns (the last axis).
    nll_ : float
        Mean NLL on the fit data at ``temperature_`` (for ``"nll"``).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])  # confident, right 2 times in 3
    >>> scaler = TemperatureScaler().fit(z, [0, 1, 1])
    >>> round(scaler.temperature_, 6)  # 3 / ln 2
    4.328085
    >>> np.round(scaler.predict_proba(z[:1]), 4)  # confidence 2/3, as observed
    array([[0.6667, 0.3333]])
    """

    _PARAMS = ("objective", "min_temperature", "max_temperature", "max_iter", "n_bins", "verbose")

    def __init__(
        self,
        *,
        objective: str = "nll",
        min_temperature: float = MIN_TEMPERATURE,
        max_temperature: float = MAX_TEMPERATURE,
        max_iter: int = 100,
        n_bins: int = 15,
        verbose: bool = False,
    ) -> None:
        self.objective = objective
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature
        self.max_iter = max_iter
        self.n_bins = n_bins
        self.verbose = verbose

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "temperature_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (a transformer that needs labels), built on demand.

        Dense input only (a sparse matrix is refused with a message saying so).
        """
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=True),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(two_d_array=True, allow_nan=False, sparse=False),
        )

    def _check_params(self) -> None:
        check_choice(self.objective, "objective", _OBJECTIVES)
        check_n_bins(self.n_bins)

    def fit(self, logits: Any, y: Any) -> TemperatureScaler:
        """Fit ``T`` on validation ``logits`` (N, C) and labels ``y`` (N,); return ``self``.

        Accepts numpy arrays, torch tensors, memory-mapped arrays and Dask
        arrays (``objective="nll"`` only for Dask). The solver runs on the
        host: a tensor is read once through ``thermoscope._arrays.to_numpy``.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> round(TemperatureScaler().fit(z, [0, 1, 1]).temperature_, 12)  # 1 / ln 2
        1.442695040889
        """
        self._check_params()
        check_fit_target(y, type(self).__name__)
        logits = _host_input(logits, "logits")
        if is_dask_array(logits) and self.objective == "ece":
            raise ValueError("`objective` must be 'nll' for Dask arrays, got 'ece'.")
        result = _fit_nll(
            logits,
            y,
            "y",
            min_temperature=self.min_temperature,
            max_temperature=self.max_temperature,
            max_iter=self.max_iter,
            progress=bool(self.verbose),
        )
        temperature = result.temperature
        if self.objective == "ece":
            lo_t, hi_t = _check_bounds(self.min_temperature, self.max_temperature)
            temperature = _fit_ece(logits, y, temperature, n_bins=self.n_bins, lo_t=lo_t, hi_t=hi_t)
        self.temperature_ = float(temperature)
        self.n_iter_ = result.n_iter
        self.nll_ = result.nll
        self.n_classes_ = int(np.shape(logits)[1])
        self.n_features_in_ = self.n_classes_
        return self

    @overload
    def fit_transform(self, logits: torch.Tensor, y: Any) -> torch.Tensor: ...

    @overload
    def fit_transform(self, logits: npt.ArrayLike, y: Any) -> Array: ...

    def fit_transform(self, logits: Any, y: Any) -> Any:
        """``fit(logits, y).transform(logits)``: the fit data's logits divided by the new ``T``.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> np.round(TemperatureScaler().fit_transform(z, [0, 1, 1]), 4)  # z * ln 2
        array([[0.6931, 0.    ],
               [0.    , 0.6931],
               [0.6931, 0.    ]])
        """
        return self.fit(logits, y).transform(logits)

    def _fitted_temperature(self) -> float:
        if not hasattr(self, "temperature_"):
            raise not_fitted_error(
                "This TemperatureScaler is not fitted yet: call `fit(logits, y)` "
                "or load one with `TemperatureScaler.from_json(path)`."
            )
        return self.temperature_

    def _checked_input(self, logits: Any) -> Any:
        """``logits`` for a fitted method: dense, at least 2-D, one column per fitted class."""
        logits = _host_input(logits, "logits")
        shape = tuple(logits.shape) if hasattr(logits, "shape") else ()
        if len(shape) < 2:
            # 1-D input means binary log-odds elsewhere in thermoscope.calibration: refuse
            # rather than guess that it is one row of logits.
            raise ValueError(
                f"`logits` must be 2-D (samples, classes) or more, got shape {shape}. "
                "Reshape your data: `logits[None]` for one sample."
            )
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and shape[-1] != expected:
            raise ValueError(
                f"`logits` must have {expected} columns (the classes seen in fit), "
                f"got shape {shape}."
            )
        return logits

    @overload
    def transform(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def transform(self, logits: npt.ArrayLike) -> Array: ...

    def transform(self, logits: Any) -> Any:
        """``logits / T``, the same kind (numpy, torch, Dask) as the input.

        A torch tensor is divided on its device in its dtype (float16 and
        bfloat16 are computed in float32), its autograd graph kept.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> np.round(s.transform([[1.0, 2.0]]), 4)  # divided by T = 3 / ln 2
        array([[0.231 , 0.4621]])
        """
        t = self._fitted_temperature()
        logits = self._checked_input(logits)
        if is_dask_array(logits):
            return logits / t
        z, back = as_float(logits, "logits")
        check_logits(z, "logits")
        return back(z / t)

    @overload
    def predict_proba(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict_proba(self, logits: npt.ArrayLike) -> Array: ...

    def predict_proba(self, logits: Any) -> Any:
        """Calibrated probabilities ``softmax(logits / T)`` along the last axis.

        The same kind as the input: a torch tensor gives a tensor computed by
        the temperature kernel on its device, differentiable in the logits.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> np.round(s.predict_proba([[0.0, 0.0]]), 4)
        array([[0.5, 0.5]])
        """
        t = self._fitted_temperature()
        logits = self._checked_input(logits)
        if is_dask_array(logits):
            return logits.rechunk({logits.ndim - 1: -1}).map_blocks(
                lambda block: softmax(block, t), dtype=np.float64
            )
        return softmax(logits, t)

    @overload
    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict(self, logits: npt.ArrayLike) -> Array: ...

    def predict(self, logits: Any) -> Any:
        """The predicted class, ``argmax`` of the logits (temperature never changes it).

        numpy input gives a numpy array, a torch tensor an int64 tensor on its
        device. The logits are checked as for :meth:`predict_proba`: a row with
        NaN or ``+inf`` is a ValueError, never a silent class.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> s.predict([[0.2, 1.0]])
        array([1])
        """
        self._fitted_temperature()
        z, _ = as_float(self._checked_input(logits), "logits")
        check_logits(z, "logits")
        return z.argmax(dim=-1) if is_torch(z) else np.argmax(z, axis=-1)

    # ------------------------------------------------------------------ JSON

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted temperature and parameters to ``path`` atomically; return the path.

        The file is written to a temporary file in the same directory and
        moved into place with ``os.replace``, so a reader never sees half a file.

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = s.to_json(pathlib.Path(d) / "t.json")
        ...     round(TemperatureScaler.from_json(p).temperature_, 6) == round(s.temperature_, 6)
        True
        """
        t = self._fitted_temperature()
        payload = {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "temperature": t,
            "params": self.get_params(),
            "n_iter": int(getattr(self, "n_iter_", 0)),
            "n_classes": int(getattr(self, "n_classes_", 0)),
        }
        return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TemperatureScaler:
        """Load a scaler saved by `to_json`; a malformed file is a ValueError naming file and field.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "t.json"
        ...     _ = p.write_text('{"format": "thermoscope.temperature", "version": 1, '
        ...                      '"temperature": 1.5}')
        ...     TemperatureScaler.from_json(p).temperature_
        1.5
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"`path` must be an existing JSON file, got {str(path)!r}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"`path` must be a readable UTF-8 JSON file, got {str(path)!r}: {exc}"
            ) from None
        try:
            data = json.loads(text, parse_constant=lambda c: float(c))
        except json.JSONDecodeError as exc:
            raise ValueError(f"`{path}` must be valid JSON, got a parse error: {exc}.") from None
        except RecursionError:
            raise ValueError(
                f"`{path}` must be a thermoscope temperature file, got JSON nested too deeply "
                "to read."
            ) from None
        except ValueError as exc:  # a number beyond Python's digit limit for int()
            raise ValueError(
                f"`{path}` must be a thermoscope temperature file, got an unreadable number: "
                f"{_first_line(exc)}"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"`{path}` must hold a JSON object, got {type(data).__name__}.")
        if data.get("format") != JSON_FORMAT:
            raise ValueError(
                f"field `format` in {path} must be {JSON_FORMAT!r}, got {data.get('format')!r}."
            )
        if data.get("version") != JSON_VERSION:
            raise ValueError(
                f"field `version` in {path} must be {JSON_VERSION}, got {data.get('version')!r}."
            )
        t = data.get("temperature")
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not (math.isfinite(t) and t > 0)
        ):
            raise ValueError(
                f"field `temperature` in {path} must be a finite number > 0, got {t!r}."
            )
        params = data.get("params", {})
        self_params = cls._PARAMS
        if not isinstance(params, dict) or set(params) - set(self_params):
            raise ValueError(
                f"field `params` in {path} must be an object with keys among "
                f"{', '.join(self_params)}, got {params!r}."
            )
        scaler = cls(**params)
        try:
            scaler._check_params()
            _check_bounds(scaler.min_temperature, scaler.max_temperature)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"field `params` in {path} is invalid: {exc}") from None
        scaler.temperature_ = float(t)
        for key, attr in (("n_iter", "n_iter_"), ("n_classes", "n_classes_")):
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(scaler, attr, value)
        if hasattr(scaler, "n_classes_"):
            scaler.n_features_in_ = scaler.n_classes_
        return scaler


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
