"""Shared fixtures: tiny seeded models, MNIST slices, and the linear oracle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robust
from robust.attack import AttackResult
from robust.data import ArrayDataset, load_dataset

pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for the tests: cpu or cuda")


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    name = str(request.config.getoption("--device"))
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return name


@pytest.fixture(scope="session")
def digits() -> ArrayDataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_model(device: str) -> robust.Classifier:
    """A small MLP trained on the 8x8 digits in about a second (seeded)."""
    from robust.testing import small_digits_model

    return robust.Classifier(small_digits_model().module, device=device)


@pytest.fixture(scope="session")
def mnist500() -> ArrayDataset:
    return load_dataset("mnist", n=500)


@pytest.fixture(scope="session")
def zoo_resnet(device: str) -> robust.Classifier:
    return robust.load_model("resnet", device=device)


@pytest.fixture(scope="session")
def zoo_cnn(device: str) -> robust.Classifier:
    return robust.load_model("cnn", device=device)


@pytest.fixture(scope="session")
def mnist_correct(mnist500: ArrayDataset, zoo_cnn: robust.Classifier) -> tuple[torch.Tensor, torch.Tensor]:
    """64 MNIST test images that the zoo CNN classifies correctly."""
    x, y = mnist500.x[:128].to(zoo_cnn.device), mnist500.y[:128].to(zoo_cnn.device)
    ok = zoo_cnn.predict(x) == y
    return x[ok][:64], y[ok][:64]


class LinearOracle:
    """A multiclass linear model f(x) = W x + b on 784 inputs whose minimal distances are known.

    Inputs sit in [0.4, 0.6] and the minimal perturbations are far smaller than 0.4, so the
    box [0, 1] never binds and the closed forms below are the true minima.
    """

    def __init__(self, n: int = 64, classes: int = 10, dim: int = 784, seed: int = 0, device: str = "cpu",
                 bias: float = 0.01) -> None:
        g = torch.Generator().manual_seed(seed)
        weight = torch.randn(classes, dim, generator=g) / dim ** 0.5
        self.weight = weight - weight.mean(dim=1, keepdim=True)
        self.bias = torch.randn(classes, generator=g) * bias
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(dim, classes))
        with torch.no_grad():
            self.net[1].weight.copy_(self.weight)
            self.net[1].bias.copy_(self.bias)
        self.model = robust.Classifier(self.net, device=device)
        self.x = (0.4 + 0.2 * torch.rand(n, 1, 28, 28, generator=g))
        self.y = (self.x.flatten(1) @ self.weight.T + self.bias).argmax(1)

    def min_distance(self, norm: str = "l2") -> torch.Tensor:
        """Per-sample minimal distance to the decision boundary in ``norm``.

        L2 and Linf: the margin over the dual norm of the weight difference. L1 and L0 reach
        the boundary sooner through few coordinates, where the box [0, 1] binds, so their
        minima come from the greedy rule that is exact for a linear constraint in a box: the
        coordinates in order of their gain per unit (L1) or of their whole gain (L0), each
        moved to its bound until the margin is spent (L1: the last one partly).
        """
        logits = self.x.flatten(1) @ self.weight.T + self.bias
        gap = logits.gather(1, self.y[:, None]) - logits                        # (n, K), >= 0
        diff = self.weight[self.y][:, None, :] - self.weight[None, :, :]        # (n, K, d)
        if norm in ("l1", "l0"):
            ratio = self._greedy(gap, diff, norm)
        else:
            ratio = gap / diff.norm(p=2 if norm == "l2" else 1, dim=2)
        ratio[torch.arange(len(self.y)), self.y] = float("inf")
        return ratio.min(dim=1).values

    def _greedy(self, gap: torch.Tensor, diff: torch.Tensor, norm: str) -> torch.Tensor:
        x = self.x.flatten(1)[:, None, :].expand_as(diff)
        room = torch.where(diff > 0, x, 1 - x)                                  # how far each coordinate can move
        rate = diff.abs()
        key = rate if norm == "l1" else rate * room
        order = key.argsort(dim=2, descending=True)
        rate, room = rate.gather(2, order), room.gather(2, order)
        reached = (rate * room).cumsum(dim=2)                                    # margin spent by the first j coordinates
        count = (reached < gap[..., None]).sum(dim=2, keepdim=True)             # coordinates moved fully
        if norm == "l0":
            return (count.squeeze(2) + 1).float()
        last = count.clamp(max=diff.shape[2] - 1)                               # the coordinate moved partly
        partial = (gap[..., None] - (reached - rate * room).gather(2, last)) / rate.gather(2, last)
        return ((room.cumsum(dim=2) - room).gather(2, last) + partial).squeeze(2)

    def ratios(self, res: AttackResult, norm: str = "l2") -> torch.Tensor:
        """Per-sample found / minimal distance of an attack's result on this model, after checking
        that every point is broken (re-run through the model) and that none beats its minimum."""
        ratio = res.distance(norm).cpu() / self.min_distance(norm)
        assert bool(res.success.all())
        assert not bool((self.model.predict(res.x_adv).cpu() == self.y).any())
        assert float(ratio.min()) >= 0.999, "nothing can beat the minimal distance"
        return ratio


@pytest.fixture(scope="session")
def linear_oracle(device: str) -> LinearOracle:
    return LinearOracle(device=device)
