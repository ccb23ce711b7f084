"""``TemperatureScaled(model)``: the classic PyTorch recipe, fitted with the exact solver.

Importing this module imports torch; ``thermoscope.calibration`` itself does
not import it, so the rest of the package works without torch installed.

The classic recipe (Guo et al., 2017) wraps a network, makes ``T`` an
``nn.Parameter`` and runs ``LBFGS(lr=0.01, max_iter=50)`` on the validation
cross-entropy: a fixed step budget that may stop short of the optimum (it
typically does on large validation sets). Here ``fit`` collects the
validation logits once and solves the convex problem in ``beta = 1 / T``
exactly (`thermoscope.calibration.fit.fit_temperature`). ``T`` is a
buffer, not a parameter: it is saved in ``state_dict`` and moves with
``.to(device)``, but an optimiser of the wrapper never touches it.

``forward`` is a torch operation on the logits' device with their autograd
graph (gradients reach the wrapped model). The fit is the one host step:
the exact solver runs on the CPU, so ``collect`` reads each batch of logits
through the explicit host conversion ``thermoscope._arrays.to_numpy``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from thermoscope._arrays import to_numpy
from thermoscope.calibration.fit import MAX_TEMPERATURE, MIN_TEMPERATURE, fit_temperature

__all__ = ["TemperatureScaled"]


def _logits_of(output: Any) -> torch.Tensor:
    """A model's logits: the tensor itself, or the ``.logits`` of a transformers output."""
    logits = getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            "`model` must return a tensor of logits (or an object with `.logits`), "
            f"got {type(output).__name__}."
        )
    return logits


class TemperatureScaled(nn.Module):
    """Wrap ``model`` so that ``forward(x) = model(x) / T``, with ``T`` fitted exactly.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a batch to logits of shape ``(batch, n_classes)`` (or to an
        object with a ``.logits`` tensor, as transformers models return).
    temperature : float, default 1.0
        Initial ``T`` (1 leaves the model unchanged until ``fit``).

    Attributes
    ----------
    temperature : torch.Tensor
        0-d float64 buffer holding ``T``.
    n_iter_ : int
        Solver passes of the last ``fit``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.eye(2))
    >>> scaled = TemperatureScaled(net)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> round(scaled.fit((net(x), torch.tensor([0, 1, 1]))).temperature_, 12)  # 1 / ln 2
    1.442695040889
    >>> scaled(torch.tensor([[0.6931471805599453, 0.0]]))
    tensor([[0.4805, 0.0000]], grad_fn=<DivBackward0>)
    """

    temperature: torch.Tensor

    def __init__(self, model: Any, temperature: float = 1.0) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"`model` must be a torch.nn.Module or callable, got {model!r}.")
        t = float(temperature)
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}.")
        self.model = model
        self.register_buffer("temperature", torch.tensor(t, dtype=torch.float64))
        self.n_iter_ = 0

    @property
    def temperature_(self) -> float:
        """``T`` as a Python float."""
        return float(self.temperature)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``model(*args, **kwargs) / T``: logits in the model's dtype, on its device.

        Differentiable in the model's output (and so in its parameters and
        inputs); ``T`` is read on the logits' device, never synchronised to
        the host.
        """
        logits = _logits_of(self.model(*args, **kwargs))
        return logits / self.temperature.to(device=logits.device, dtype=logits.dtype)

    @torch.no_grad()
    def collect(self, loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the model (in eval mode, no grad) over ``(inputs, labels)`` batches.

        Returns the concatenated logits (float64, on the CPU) and labels: the
        solver's input, read batch by batch through ``to_numpy``.
        """
        was_training = getattr(self.model, "training", False)
        if isinstance(self.model, nn.Module):
            self.model.eval()
        logits, labels = [], []
        try:
            for batch in loader:
                if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise TypeError(
                        "`data` must yield (inputs, labels) batches, "
                        f"got a batch of type {type(batch).__name__}."
                    )
                x, y = batch
                z, _ = to_numpy(_logits_of(self.model(x)), "model output")
                logits.append(torch.from_numpy(z.astype(np.float64)))
                labels.append(torch.from_numpy(np.array(to_numpy(y, "labels")[0])))
        finally:
            if isinstance(self.model, nn.Module):
                self.model.train(was_training)
        if not logits:
            raise ValueError("`data` must yield at least one (inputs, labels) batch, got none.")
        return torch.cat(logits), torch.cat(labels)

    def fit(
        self,
        data: Iterable[Any] | tuple[Any, Any],
        *,
        min_temperature: float = MIN_TEMPERATURE,
        max_temperature: float = MAX_TEMPERATURE,
    ) -> TemperatureScaled:
        """Fit ``T`` on validation data; return ``self``.

        Parameters
        ----------
        data : DataLoader (or any iterable of ``(inputs, labels)``) or ``(logits, labels)``
            A loader is run through the wrapped model; a pair of a 2-D logits
            tensor/array and labels is used as is (logits already computed).
        min_temperature, max_temperature : float
            Bounds on ``T`` (see `fit_temperature`).
        """
        is_pair = (
            isinstance(data, tuple)
            and len(data) == 2
            and getattr(data[0], "ndim", 0) == 2
            and getattr(data[1], "ndim", 0) == 1
        )
        logits, labels = data if is_pair else self.collect(data)
        result = fit_temperature(
            logits, labels, min_temperature=min_temperature, max_temperature=max_temperature
        )
        self.temperature.fill_(result.temperature)
        self.n_iter_ = result.n_iter
        return self

    def extra_repr(self) -> str:
        return f"temperature={self.temperature_:.6g}"
