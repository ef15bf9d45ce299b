"""Class names of the standard datasets, and the ImageNet class index of a WordNet id.

ImageNet's 1000 classes are numbered in the order of their WordNet ids (``imagenet_wnids.txt``,
shipped with the package); their names come from torchvision.
"""

from __future__ import annotations

import functools
from importlib import resources

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100 = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]
DIGITS = [str(i) for i in range(10)]


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids of ImageNet-1k, in class-index order."""
    text = resources.files("robust.data").joinpath("imagenet_wnids.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@functools.cache
def imagenet_index() -> dict[str, int]:
    """WordNet id -> ImageNet class index."""
    return {wnid: i for i, wnid in enumerate(imagenet_wnids())}


def imagenet_names() -> list[str]:
    """The 1000 ImageNet class names, by class index (torchvision's list)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


def is_wnid(name: str) -> bool:
    """Whether a folder name is an ImageNet-1k WordNet id (``n`` and eight digits, one of the 1000)."""
    return name in imagenet_index()
