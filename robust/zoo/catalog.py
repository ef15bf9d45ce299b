"""The model zoo: small MNIST classifiers with weights shipped inside the package.

Standard weights are reproduced by ``scripts/train_zoo.py``, adversarially trained ones by
the ``robust train`` command in their entry's ``recipe``; ``weights/zoo.json`` records the
clean accuracy each reached on the 10,000 MNIST test images (and, for the adversarially
trained ones, PGD-40 robust accuracy at eps 0.3 on the first 1000).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from importlib import resources

import torch
from torch import nn

from robust.zoo.nets import SmallCNN, SmallResNet


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it, what it expects, what it is."""

    build: Callable[[], nn.Module]
    description: str
    dataset: str = "mnist"
    bounds: tuple[float, float] = (0.0, 1.0)
    default_eps: float = 0.3
    recipe: str = ""


AT_RECIPE = "robust train --model {model} --defense adversarial-training:{defense} --eps 0.3 --epochs {epochs} " \
            "--out robust/weights/{model}-at.pt"

ZOO: dict[str, ZooEntry] = {
    "cnn": ZooEntry(SmallCNN, "small CNN: 2 conv + 2 dense layers, 421k parameters"),
    "resnet": ZooEntry(SmallResNet, "ResNet for 28x28: stem + 3 basic blocks (16/32/64), 78k parameters"),
    "cnn-at": ZooEntry(
        SmallCNN, "`cnn` adversarially trained (Madry PGD-7, Linf eps 0.3)",
        recipe=AT_RECIPE.format(model="cnn", defense="method=pgd,eps_warmup=2", epochs=10)),
    "resnet-at": ZooEntry(
        SmallResNet, "`resnet` adversarially trained (FGSM with random start, then PGD-7; Linf eps 0.3)",
        recipe=AT_RECIPE.format(model="resnet", defense="method=fgsm-rs,eps_warmup=3", epochs=12)
        + " && robust train --model resnet --weights robust/weights/resnet-at.pt --defense adversarial-training:method=pgd "
          "--eps 0.3 --epochs 2 --lr 1e-3 --out robust/weights/resnet-at.pt --force"),
}


def zoo_cards() -> dict[str, dict[str, Any]]:
    """Per-model facts recorded at training time (clean accuracy on the MNIST test set)."""
    text = resources.files("robust.zoo").joinpath("weights", "zoo.json").read_text()
    cards: dict[str, dict[str, Any]] = json.loads(text)
    return cards


def load_zoo_module(name: str) -> nn.Module:
    """Build a zoo architecture and load its shipped weights (``weights_only=True``)."""
    net = ZOO[name].build()
    with resources.as_file(resources.files("robust.zoo").joinpath("weights", f"{name}.pt")) as path:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()
