"""Image files as a dataset: decoded when read, resized and center-cropped as the model needs.

A folder of class folders (torchvision's ImageFolder layout) gives labels by sorted folder
name; a folder whose class folders are ImageNet WordNet ids (``n01440764``, ...) gives the
standard ImageNet-1k class indices instead, even when only some classes are present.
Nothing is decoded until a sample is read, so a dataset of any size costs memory only for
the batches being read.

The standard ImageNet evaluation transform is ``resize=256, crop=224``: the short side is
resized to 256 pixels (bilinear, antialiased), then the center 224 x 224 pixels are kept.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset

from robust.data.classes import imagenet_index, imagenet_names, is_wnid
from robust.errors import RobustError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


@dataclass
class ImageFiles(Dataset):
    """Labelled image files, read as float (C, H, W) in [0, 1] with an optional resize and center crop.

    Attributes:
        files: image paths; labels: their class indices.
        name, classes, credit: what the report shows.
        resize: resize the short side to this many pixels first (None: keep the size).
        crop: then keep the center ``crop`` x ``crop`` pixels (None: no crop).
        rgb: decode as three channels (greyscale and CMYK files converted); False: one channel.
    """

    files: list[Path]
    labels: list[int]
    name: str = "images"
    classes: list[str] = field(default_factory=list)
    resize: int | None = None
    crop: int | None = None
    rgb: bool = True
    credit: str = ""
    bounds: tuple[float, float] = (0.0, 1.0)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms.v2 import functional as tf

        image = decode(self.files[i], self.rgb)
        if self.resize is not None:
            image = tf.resize(image, [self.resize], antialias=True)
        if self.crop is not None:
            image = tf.center_crop(image, [self.crop, self.crop])
        return image.float() / 255.0, self.labels[i]

    def head(self, n: int | None) -> ImageFiles:
        """The first ``n`` images (all when ``n`` is None)."""
        if n is None:
            return self
        if n <= 0:
            raise RobustError(f"--n must be a positive number of samples, got {n}")
        return replace(self, files=self.files[:n], labels=self.labels[:n])

    def prepared(self, resize: int | None, crop: int | None) -> ImageFiles:
        """The same files with another resize and crop."""
        for what, value in (("resize", resize), ("crop", crop)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise RobustError(f"--{what} must be a positive number of pixels, got {value!r}")
        return replace(self, resize=resize, crop=crop)

    def shard(self, rank: int, world: int) -> ImageFiles:
        """Every ``world``-th file from ``rank``: what one of ``world`` processes reads."""
        return replace(self, files=self.files[rank::world], labels=self.labels[rank::world])

    def identity(self) -> str:
        """A short hash of the files, labels and preprocessing (for resumable runs)."""
        digest = hashlib.sha256(repr((self.resize, self.crop, self.rgb)).encode())
        for path, label in zip(self.files, self.labels):
            digest.update(f"{path}\0{label}\0".encode())
        return digest.hexdigest()[:32]


def load_image_folder(root: Path, resize: int | None = None, crop: int | None = None) -> ImageFiles:
    """A folder of class folders of images; WordNet-id folders get the ImageNet-1k class indices."""
    folders = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not folders:
        raise RobustError(f"{root} has no class subfolders")
    imagenet = all(is_wnid(name) for name in folders)
    index = imagenet_index() if imagenet else {name: i for i, name in enumerate(folders)}
    files, labels = [], []
    for name in folders:
        found = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [index[name]] * len(found)
    if not files:
        raise RobustError(f"no images found under {root}")
    classes = imagenet_names() if imagenet else folders
    data = ImageFiles(files, labels, root.name, classes, rgb=_is_rgb(files[0]))
    return data.prepared(resize, crop)


def _is_rgb(path: Path) -> bool:
    """Whether the first image has colour (then every image is read as RGB)."""
    return int(decode(path, None).shape[0]) >= 3


def decode(path: Path, rgb: bool | None) -> torch.Tensor:
    """One image file as uint8 (C, H, W): RGB, greyscale, or (None) as stored."""
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs in favour of torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_image, read_file

        mode = ImageReadMode.UNCHANGED if rgb is None else ImageReadMode.RGB if rgb else ImageReadMode.GRAY
        try:
            return decode_image(read_file(str(path)), mode=mode)
        except RuntimeError as exc:
            raise RobustError(f"cannot decode image {path}: {str(exc).splitlines()[0]}") from exc
