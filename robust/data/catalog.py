"""``load_dataset``: every dataset by name or path, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robust.data.arrays import ArrayDataset, Data, as_dataset, check_xy, load_array_file
from robust.data.images import ImageFiles, load_image_folder
from robust.data.mnist import MNIST_CREDIT, check_split, load_digits, load_mnist
from robust.data.samples import SAMPLES, load_samples
from robust.errors import RobustError, suggest

BUILTIN = {"mnist": load_mnist, "digits": load_digits}
READERS = ("mnist", "cifar10", "cifar100")  # torchvision's readers on a local root: NAME:ROOT


def load_torchvision(kind: str, root: str, split: str) -> ArrayDataset:
    """torchvision's MNIST, CIFAR-10 or CIFAR-100 reader on a local root (never downloads)."""
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[kind]
    try:
        ds = cls(root, train=check_split(split) == "train", download=False)
    except RuntimeError as exc:
        raise RobustError(f"no {kind} data under {root}: {exc}") from exc
    x = torch.as_tensor(np.asarray(ds.data))
    x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x
    data = as_dataset(x, torch.as_tensor(np.asarray(ds.targets)), kind)
    data.classes = list(ds.classes)
    return data


def has_splits(name: str) -> bool:
    """Whether ``name`` has separate train and test splits (files, folders and samples are one set)."""
    kind, _, root = name.partition(":")
    return name in BUILTIN or (kind in READERS and bool(root))


def load_dataset(name: str, *, split: str = "test", n: int | None = None, resize: int | None = None,
                 crop: int | None = None) -> ArrayDataset | ImageFiles:
    """Load a dataset by name or path.

    Args:
        name: ``mnist``, ``digits``, ``samples:cifar10`` (``mnist``, ``fashion-mnist``,
            ``cifar100``, ``imagenet``: Foolbox's 20 test images each), ``mnist:ROOT``,
            ``cifar10:ROOT`` or ``cifar100:ROOT`` (torchvision's readers on a local folder), a
            ``.npz``/``.pt`` file, or a folder of class folders of images (ImageNet WordNet-id
            folders get the ImageNet class indices).
        split: ``train`` or ``test``.
        n: keep only the first ``n`` samples.
        resize, crop: for image files (folders and ``samples:``), resize the short side and
            center-crop; tensors and array files are used as they are.

    Returns:
        An :class:`ArrayDataset` (in memory) or, for image files, an :class:`ImageFiles` that
        decodes each image when it is read.

    Raises:
        RobustError: unknown name, missing file, or arrays of the wrong shape or type.
    """
    if name in BUILTIN:
        return _images_only(BUILTIN[name](split), resize, crop, name).head(n)
    kind, _, rest = name.partition(":")
    if kind == "samples":
        return load_samples(rest, resize, crop).head(n)
    if kind in READERS and rest:
        return _images_only(load_torchvision(kind, rest, split), resize, crop, name).head(n)
    path = Path(name)
    if path.is_dir():
        return load_image_folder(path, resize, crop).head(n)
    if path.suffix in (".npz", ".pt", ".pth"):
        if not path.exists():
            raise RobustError(f"dataset file not found: {path}")
        return _images_only(load_array_file(path), resize, crop, name).head(n)
    known = [*BUILTIN, *(f"samples:{k}" for k in SAMPLES)]
    raise RobustError(f"unknown dataset {name!r}{suggest(name, known)}; use one of {', '.join(known)}, "
                      "NAME:ROOT for torchvision's mnist, cifar10 or cifar100 files, or a path")


def is_image_files(name: str) -> bool:
    """Whether the dataset ``name`` is read from image files (folders and ``samples:``), which take a resize and crop."""
    return name.startswith("samples:") or Path(name).is_dir()


def _images_only(data: ArrayDataset, resize: int | None, crop: int | None, name: str) -> ArrayDataset:
    if resize is not None or crop is not None:
        raise RobustError(f"--resize and --crop apply to image files (folders, samples:), not to {name!r}")
    return data


def list_datasets() -> dict[str, str]:
    """Built-in dataset names with a one-line description."""
    return {
        "mnist": "official MNIST, 60k train / 10k test, 1x28x28 (" + MNIST_CREDIT + ")",
        "digits": "scikit-learn 8x8 digits, 1,297 train / 500 test, 1x8x8",
        **{f"samples:{k}": f"20 real {v[3]} images shipped with Foolbox" + (
            " (512x512, read at 256 then center 224 unless the model says otherwise)" if k == "imagenet" else "")
           for k, v in SAMPLES.items()},
        "mnist:ROOT, cifar10:ROOT, cifar100:ROOT": "torchvision's readers on files already under ROOT (nothing downloaded)",
        "FOLDER": "class folders of images, decoded as read; ImageNet WordNet-id folders get the standard 1000 "
                  "class indices; --resize N --crop N (default: the model's own preprocessing)",
        "FILE.npz, FILE.pt": "arrays x (N,C,H,W or N,H,W; uint8 or float) and y (N,)",
    }


def collect(data: Data | str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Gather ``data`` into CPU tensors ``x`` (N, ...) float and ``y`` (N,) long, plus a name.

    Everything is held in memory: :func:`robust.evaluate` streams instead (see
    :mod:`robust.data.stream`); this serves the comparisons and assertions made on a few points.
    """
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, ArrayDataset):
        return check_xy(data.x, data.y) + (data.name,)
    if isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(torch.is_tensor(t) for t in data):
            raise RobustError("data given as a pair must be two tensors (x, y)")
        return check_xy(data[0], data[1]) + ("tensors",)
    if not isinstance(data, (Dataset, DataLoader)):
        raise RobustError(f"data must be (x, y) tensors, a Dataset, a DataLoader or a name, got {type(data).__name__}")
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=1024)
    batches = [(b[0], torch.as_tensor(b[1])) for b in loader]
    if not batches:
        raise RobustError("the dataset is empty")
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    return check_xy(x, y) + (str(getattr(loader.dataset, "name", type(loader.dataset).__name__)),)


def in_memory(data: ArrayDataset | ImageFiles) -> ArrayDataset:
    """``data`` as tensors in memory (image files decoded, every one of them)."""
    if isinstance(data, ArrayDataset):
        return data
    x, y, name = collect(data)
    return ArrayDataset(x, y, name, list(data.classes), data.bounds, data.credit)
