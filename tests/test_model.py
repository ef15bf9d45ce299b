"""Classifier: normalization inside, modes, probability warning, bounds checks, pass counting."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import robust


def test_normalization_happens_inside() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    model = robust.Classifier(net, mean=[0.5], std=[0.25], device="cpu")
    x = torch.rand(3, 1, 2, 2)
    assert torch.allclose(model(x), net((x - 0.5) / 0.25))


def test_mode_restored_and_eval_inside() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    model = robust.Classifier(net, device="cpu")
    x = torch.rand(8, 1, 2, 2)
    with model.evaluating():
        assert not net.training and not net[1].training
        assert torch.equal(model(x), model(x))  # dropout off
    assert net.training and net[1].training


def test_graph_only_when_input_requires_it() -> None:
    model = robust.Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), device="cpu")
    assert not model(torch.rand(2, 1, 2, 2)).requires_grad
    assert model(torch.rand(2, 1, 2, 2, requires_grad=True)).requires_grad


def test_counts_forward_and_backward_passes() -> None:
    model = robust.Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), device="cpu")
    x = torch.rand(2, 1, 2, 2, requires_grad=True)
    model(x).sum().backward()
    model(x.detach())
    assert (model.counter.forward, model.counter.backward) == (2, 1)


def test_warns_on_probabilities() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="probabilities"):
        robust.Classifier(net, device="cpu")(torch.rand(5, 1, 2, 2))


def test_no_warning_on_logits() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        robust.Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), device="cpu")(torch.rand(5, 1, 2, 2))


def test_rejects_bad_outputs_and_settings() -> None:
    with pytest.raises(robust.RobustError, match="logits of shape"):
        robust.Classifier(nn.Flatten(0), device="cpu")(torch.rand(2, 1, 2, 2))
    with pytest.raises(robust.RobustError, match="bounds"):
        robust.Classifier(nn.Identity(), bounds=(1.0, 0.0))
    with pytest.raises(robust.RobustError, match="nn.Module"):
        robust.Classifier("not a module")  # type: ignore[arg-type]


def test_check_inputs() -> None:
    model = robust.Classifier(nn.Identity(), bounds=(0, 1), device="cpu")
    model.check_inputs(torch.rand(2, 3))
    with pytest.raises(robust.RobustError, match="outside"):
        model.check_inputs(torch.rand(2, 3) + 1.5)
    with pytest.raises(robust.RobustError, match="floating point"):
        model.check_inputs(torch.ones(2, 3, dtype=torch.long))
