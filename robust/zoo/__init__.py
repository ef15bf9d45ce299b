"""Models: the shipped zoo, timm and Hugging Face models, users' modules, TorchScript files and torchvision architectures.

- :mod:`~robust.zoo.catalog`: the zoo entries and their recorded figures (``weights/zoo.json``);
- :mod:`~robust.zoo.loaders`: :func:`load_model` for every kind of model spec;
- :mod:`~robust.zoo.timm_models`, :mod:`~robust.zoo.hf_models`: ``timm:NAME`` and ``hf:FOLDER``;
- :mod:`~robust.zoo.normalization`: normalization presets and what each loader knows about its inputs;
- :mod:`~robust.zoo.state`: state dicts and checkpoints, read with ``weights_only=True``;
- :mod:`~robust.zoo.nets`: the zoo's architectures.

Nothing is ever downloaded: weights come from local files and folders.
"""

from robust.zoo.catalog import ZOO, ZooEntry, load_zoo_module, zoo_cards
from robust.zoo.loaders import build_architecture, list_models, load_model

__all__ = ["ZOO", "ZooEntry", "build_architecture", "list_models", "load_model", "load_zoo_module", "zoo_cards"]
