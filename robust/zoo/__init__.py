"""Models: the shipped zoo, users' modules, TorchScript files and torchvision architectures.

- :mod:`~robust.zoo.catalog`: the zoo entries and their recorded figures (``weights/zoo.json``);
- :mod:`~robust.zoo.loaders`: :func:`load_model` for every kind of model spec;
- :mod:`~robust.zoo.nets`: the zoo's architectures.
"""

from robust.zoo.catalog import ZOO, ZooEntry, load_zoo_module, zoo_cards
from robust.zoo.loaders import build_architecture, list_models, load_model

__all__ = ["ZOO", "ZooEntry", "build_architecture", "list_models", "load_model", "load_zoo_module", "zoo_cards"]
