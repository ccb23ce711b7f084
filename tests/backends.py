"""The array backends every suite runs on: numpy, and torch CPU tensors in float32 and float64.

A test parametrised with ``on_every_backend`` builds its input with
``backend.array`` and reads results back with ``backend.numpy``;
``backend.check`` asserts that a result is of the input's kind, floating dtype
and device. CUDA joins the list where it exists (no test needs it). Without
torch the numpy parameter still runs and each torch parameter is skipped on
its own (never the whole file): ``torch`` is then None and ``needs_torch``
skips a torch-only test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

try:
    import torch
except ImportError:  # numpy is the reference backend; torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


@dataclass(frozen=True)
class Backend:
    """One array library, dtype and device to run a test on."""

    name: str
    dtype_name: str | None = None  # torch dtype name ("float32"); None for numpy
    device: str = "cpu"

    @property
    def is_torch(self) -> bool:
        return self.dtype_name is not None

    @property
    def dtype(self) -> Any:
        """The torch dtype (None for numpy)."""
        return None if self.dtype_name is None else getattr(torch, self.dtype_name)

    @property
    def rtol(self) -> float:
        """Agreement with a float64 numpy reference: 1e-5 for float32, 1e-6 otherwise."""
        return 1e-5 if self.dtype_name == "float32" else 1e-6

    def array(self, x: Any, requires_grad: bool = False) -> Any:
        if not self.is_torch:
            return np.asarray(x, dtype=np.float64)
        return torch.tensor(
            np.asarray(x, dtype=np.float64), dtype=self.dtype, device=self.device
        ).requires_grad_(requires_grad)

    def numpy(self, x: Any) -> np.ndarray:
        if self.is_torch:
            assert isinstance(x, torch.Tensor), f"expected a tensor, got {type(x).__name__}"
            return x.detach().to("cpu", torch.float64).numpy()
        assert isinstance(x, np.ndarray), f"expected a numpy array, got {type(x).__name__}"
        return np.asarray(x, dtype=np.float64)

    def check(self, result: Any, *, integer: bool = False) -> None:
        """``result`` is of this backend's kind, dtype (int64 if ``integer``) and device."""
        if self.is_torch:
            assert isinstance(result, torch.Tensor)
            assert result.dtype == (torch.int64 if integer else self.dtype)
            assert result.device.type == torch.device(self.device).type
        else:
            assert isinstance(result, np.ndarray)
            assert result.dtype == (np.int64 if integer else np.float64)

    def __str__(self) -> str:
        return self.name


BACKENDS = [
    Backend("numpy"),
    Backend("torch-float64", "float64"),
    Backend("torch-float32", "float32"),
]
if torch is not None and torch.cuda.is_available():
    BACKENDS.append(Backend("cuda-float32", "float32", "cuda"))


def _params(backends: list[Backend]) -> list[Any]:
    return [pytest.param(b, id=str(b), marks=[needs_torch] if b.is_torch else []) for b in backends]


#: Parametrize a test over every backend: ``@on_every_backend`` then a ``backend`` argument.
on_every_backend = pytest.mark.parametrize("backend", _params(BACKENDS))
#: The same over the torch backends only (each skipped without torch).
on_torch_backends = pytest.mark.parametrize("backend", _params([b for b in BACKENDS if b.is_torch]))
