"""The one way every ``--json`` output is written: strict JSON, no ``Infinity`` or ``NaN``.

Python's ``json`` writes ``Infinity``, ``-Infinity`` and ``NaN``, which are not
JSON (RFC 8259): JavaScript's ``JSON.parse`` refuses them and ``jq`` reads them
as 1.797e308. Non-finite numbers are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"`` instead, which ``float()`` reads back.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps"]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(obj: Any) -> str:
    """``obj`` as strict JSON; ``inf``, ``-inf`` and ``nan`` become strings.

    numpy scalars are written as the Python numbers they hold.

    Examples
    --------
    >>> dumps({"t": float("inf"), "p": [0.5, float("-inf")], "n": 3})
    '{"t": "inf", "p": [0.5, "-inf"], "n": 3}'
    """
    return json.dumps(_finite(obj), allow_nan=False, default=_plain)


def _plain(value: Any) -> Any:
    # numpy scalars and arrays (np.float64 is a float already; np.float32 is not)
    to_list = getattr(value, "tolist", None)
    if to_list is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return _finite(to_list())
