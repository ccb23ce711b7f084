"""Type aliases shared by every module (one definition instead of one per module)."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

__all__ = ["Array", "FloatArray", "IntArray"]

#: A numpy array of any dtype and shape.
Array: TypeAlias = np.ndarray[Any, np.dtype[Any]]
#: A floating-point numpy array.
FloatArray: TypeAlias = np.ndarray[Any, np.dtype[np.floating[Any]]]
#: An integer numpy array (token ids, class labels, counts).
IntArray: TypeAlias = np.ndarray[Any, np.dtype[np.integer[Any]]]
