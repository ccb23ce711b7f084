"""The sums one chunk of data contributes to every top-label metric.

The streaming accumulator adds them chunk by chunk, the Dask path block by
block on its workers: one function, so both reduce exactly the same state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray
from thermoscope.calibration._binning import BinSums, bin_sums
from thermoscope.calibration._inputs import prepare


def chunk_state(
    probs: Any, labels: Any, edges: FloatArray, from_logits: bool, temperature: float = 1.0
) -> tuple[BinSums, int, int, float, float, bool, int]:
    """Sums of one chunk: (bin sums, n, n_correct, nll sum, brier sum, binary, n_classes).

    Examples
    --------
    >>> import numpy as np
    >>> sums, n, correct, nll, brier, binary, k = chunk_state(
    ...     [[0.9, 0.1], [0.3, 0.7]], [0, 0], np.array([0.0, 0.5, 1.0]), False
    ... )
    >>> sums.count.tolist(), n, correct, round(brier, 2), binary, k
    ([0, 2], 2, 1, 1.0, False, 2)

    A torch chunk is reduced to these sums on its device; only the sums come
    to the host (the accumulator's state), through ``to_numpy``.
    """
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.chunk_sums(probs, labels, edges, from_logits, temperature)
    batch = prepare(probs, labels, from_logits, temperature)
    conf, hit = batch.top_label()
    return (
        bin_sums(conf, hit, edges),
        int(batch.labels.shape[0]),
        batch.n_correct(),
        float(-np.sum(batch.log_true())),
        float(np.sum(batch.brier_terms())),
        batch.binary,
        batch.n_classes,
    )
