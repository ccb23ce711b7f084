"""TemperatureScaled(model): the classic PyTorch wrapper, fitted exactly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

import torch

from thermoscope.calibration.fit import fit_temperature
from thermoscope.calibration.torch_module import TemperatureScaled


def make_problem(
    n: int = 2000, seed: int = 0
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A fixed linear net and labels drawn from softmax(net(x) / 2): the optimum T is near 2."""
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 5))
    with torch.no_grad():
        net[0].weight.copy_(3 * torch.randn(5, 8, generator=gen))
        net[0].bias.zero_()
    x = torch.randn(n, 8, generator=gen)
    with torch.no_grad():
        y = torch.multinomial(torch.softmax(net(x) / 2, dim=1), 1, generator=gen).squeeze(1)
    return net, x, y


def test_fit_from_loader_equals_exact_solver_and_beats_lbfgs() -> None:
    net, x, y = make_problem()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=300)
    net.train()
    scaled = TemperatureScaled(net).fit(loader)
    assert net.training  # the model's mode is restored after collecting logits
    with torch.no_grad():
        logits = net(x)
    assert scaled.temperature_ == fit_temperature(logits.double(), y).temperature
    assert 1.5 < scaled.temperature_ < 2.5
    # Independent check of optimality: autograd's derivative of the NLL in T is 0 there.
    t = torch.tensor(scaled.temperature_, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits.double() / t, y)
    (grad,) = torch.autograd.grad(loss, t)
    assert abs(float(grad)) < 1e-10
    # The classic recipe (T = 1.5, LBFGS lr=0.01, max_iter=50) ends no lower.
    t_lbfgs = torch.nn.Parameter(torch.ones(1) * 1.5)
    opt = torch.optim.LBFGS([t_lbfgs], lr=0.01, max_iter=50)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = torch.nn.functional.cross_entropy(logits / t_lbfgs, y)
        out.backward()
        return out

    opt.step(closure)
    with torch.no_grad():
        nll_lbfgs = torch.nn.functional.cross_entropy(logits.double() / t_lbfgs.double(), y)
    assert float(loss.detach()) <= float(nll_lbfgs) + 1e-12


def test_forward_divides_by_t_and_state_dict_keeps_it() -> None:
    net, x, y = make_problem(500)
    with torch.no_grad():
        logits = net(x)
    scaled = TemperatureScaled(net).fit((logits, y))
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), logits / scaled.temperature_, rtol=1e-6, atol=0)
    assert "temperature" in scaled.state_dict()
    twin = TemperatureScaled(make_problem(500)[0])
    twin.load_state_dict(scaled.state_dict())
    assert twin.temperature_ == scaled.temperature_
    assert list(scaled.parameters()) == list(net.parameters())  # T is a buffer
    assert "temperature=" in repr(scaled)


def test_outputs_with_logits_attribute() -> None:
    net, x, y = make_problem(300)

    def hf_like(inputs: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=net(inputs))

    scaled = TemperatureScaled(hf_like).fit([(x[:150], y[:150]), (x[150:], y[150:])])
    with torch.no_grad():
        assert scaled.temperature_ == fit_temperature(net(x).double(), y).temperature


def test_errors() -> None:
    net, x, y = make_problem(10)
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module or callable"):
        TemperatureScaled(3)
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0, got -1"):
        TemperatureScaled(net, temperature=-1)
    with pytest.raises(TypeError, match=r"`data` must yield \(inputs, labels\) batches"):
        TemperatureScaled(net).fit([x])
    with pytest.raises(ValueError, match="`data` must yield at least one"):
        TemperatureScaled(net).fit([])
    with pytest.raises(TypeError, match="`model` must return a tensor of logits"):
        TemperatureScaled(lambda inputs: "nope").fit([(x, y)])
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 4\]"):
        TemperatureScaled(net).fit([(x, y + 5)])
