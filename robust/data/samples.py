"""Small real test sets for demos and tests: the 20 images per dataset that Foolbox ships.

Foolbox carries, in its package data, 20 test images each of MNIST, Fashion-MNIST, CIFAR-10,
CIFAR-100 and ImageNet (``<dataset>_<index>_<label>.<ext>``). They are read by path (Foolbox
is never imported), as ``samples:cifar10``, ``samples:imagenet``, ... ImageNet's are 512 x 512
and get the standard evaluation transform (short side 256, center 224) unless the model or the
caller says otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from robust.data.classes import CIFAR10, CIFAR100, DIGITS, FASHION_MNIST, imagenet_names
from robust.data.images import ImageFiles
from robust.errors import RobustError, suggest

CREDIT = "images shipped with Foolbox (Rauber et al.), from the {} set"
SAMPLES = {  # our name -> (Foolbox's file prefix, label names, colour, dataset)
    "mnist": ("mnist", lambda: DIGITS, False, "MNIST test"),
    "fashion-mnist": ("fashionMNIST", lambda: FASHION_MNIST, False, "Fashion-MNIST test"),
    "cifar10": ("cifar10", lambda: CIFAR10, True, "CIFAR-10 test"),
    "cifar100": ("cifar100", lambda: CIFAR100, True, "CIFAR-100 test"),
    "imagenet": ("imagenet", imagenet_names, True, "ImageNet (ILSVRC 2012) validation"),
}
IMAGENET_PREPROCESSING = (256, 224)


def samples_dir() -> Path:
    """Foolbox's data folder, found by path."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or spec.origin is None:
        raise RobustError("the samples: datasets are Foolbox's test images: install Foolbox "
                          "(pip install 'robust[frameworks]', or make install)")
    return Path(spec.origin).parent / "data"


def load_samples(which: str, resize: int | None = None, crop: int | None = None) -> ImageFiles:
    """The 20 sample images of ``which`` (mnist, fashion-mnist, cifar10, cifar100, imagenet)."""
    if which not in SAMPLES:
        raise RobustError(f"unknown sample set {which!r}{suggest(which, SAMPLES)}; "
                          f"use one of {', '.join('samples:' + k for k in SAMPLES)}")
    prefix, names, rgb, dataset = SAMPLES[which]
    files = sorted(samples_dir().glob(f"{prefix}_[0-9][0-9]_*.*"))
    if not files:
        raise RobustError(f"no {prefix} images in {samples_dir()}")
    labels = [int(f.stem.rsplit("_", 1)[1]) for f in files]
    if which == "imagenet" and resize is None and crop is None:
        resize, crop = IMAGENET_PREPROCESSING
    data = ImageFiles(files, labels, f"samples:{which}", names(), rgb=rgb, credit=CREDIT.format(dataset))
    return data.prepared(resize, crop)
