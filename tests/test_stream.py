"""Image files, Foolbox's sample sets, ImageNet folders and evaluations that stream their data in chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import robust
from robust.data import load_dataset
from robust.data.classes import imagenet_names, imagenet_wnids
from robust.data.stream import as_source


def write_images(root: Path, folders: dict[str, list[tuple[int, int]]], channels: int = 3) -> None:
    """PNG files of the given (height, width) sizes into class folders, each with its own grey level."""
    from torchvision.io import write_png

    for name, sizes in folders.items():
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            image = torch.randint(0, 256, (channels, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
            write_png(image, str(root / name / f"{i:03d}.png"))


@pytest.mark.parametrize("which,shape,classes", [("cifar10", (3, 32, 32), 10), ("cifar100", (3, 32, 32), 100),
                                                 ("mnist", (1, 28, 28), 10), ("fashion-mnist", (1, 28, 28), 10),
                                                 ("imagenet", (3, 224, 224), 1000)])
def test_sample_sets_are_real_labelled_images(which: str, shape: tuple[int, ...], classes: int) -> None:
    data = load_dataset(f"samples:{which}")
    x, y = data[0]
    assert len(data) == 20 and tuple(x.shape) == shape and len(data.classes) == classes
    assert 0.0 <= float(x.min()) < float(x.max()) <= 1.0 and 0 <= y < classes
    assert data.labels == [int(f.stem.rsplit("_", 1)[1]) for f in data.files], "labels come from the file names"


def test_sample_sets_take_another_resize_and_crop() -> None:
    assert tuple(load_dataset("samples:imagenet", resize=160, crop=128)[3][0].shape) == (3, 128, 128)
    assert tuple(load_dataset("samples:cifar10", resize=64)[0][0].shape) == (3, 64, 64)
    with pytest.raises(robust.RobustError, match="--crop must be a positive number of pixels"):
        load_dataset("samples:cifar10", crop=0)
    with pytest.raises(robust.RobustError, match="apply to image files"):
        load_dataset("digits", resize=32)


def test_a_partial_imagenet_layout_keeps_the_standard_class_indices(tmp_path: Path) -> None:
    wnids = imagenet_wnids()
    chosen = {wnids[0]: 0, wnids[417]: 417, wnids[999]: 999}
    write_images(tmp_path, {w: [(40, 50)] * 2 for w in chosen})
    data = load_dataset(str(tmp_path), resize=36, crop=32)
    assert sorted(set(data.labels)) == [0, 417, 999]
    assert [data.labels[i] for i in range(len(data))] == [chosen[f.parent.name] for f in data.files]
    assert data.classes == imagenet_names() and data.classes[417] == "balloon"
    assert tuple(data[0][0].shape) == (3, 32, 32)


def test_other_folders_are_numbered_in_sorted_order(tmp_path: Path) -> None:
    write_images(tmp_path, {"dog": [(6, 6)], "cat": [(6, 6)] * 2}, channels=1)
    data = load_dataset(str(tmp_path))
    assert data.classes == ["cat", "dog"] and data.labels == [0, 0, 1] and tuple(data[0][0].shape) == (1, 6, 6)


def test_images_of_several_sizes_need_a_resize_and_crop(tmp_path: Path) -> None:
    write_images(tmp_path, {"a": [(30, 40), (50, 20)], "b": [(32, 32)]})
    model = robust.Classifier(nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 2)))
    with pytest.raises(robust.RobustError, match=r"differ in size.*--resize N --crop N"):
        robust.evaluate(model, str(tmp_path), "fgsm", eps=0.01, workers=0)
    result = robust.evaluate(model, load_dataset(str(tmp_path), resize=24, crop=16), "fgsm", eps=0.01, workers=0)
    assert result.n == 3


def test_a_model_s_own_preprocessing_is_used_for_image_files() -> None:
    seen: list[tuple[int, ...]] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape[1:]))
            return x.mean(dim=(2, 3)).repeat(1, 334)[:, :1000]

    model = robust.Classifier(Probe(), preprocessing=robust.model.Preprocessing(resize=72, crop=64))
    robust.evaluate(model, "samples:imagenet", "fgsm", eps=0.01, workers=0)
    assert set(seen) == {(3, 64, 64)}


class Counted(Dataset):
    """A dataset that records which items were read, in order."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
        self.reads: list[int] = []
        self.name = "counted"

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        self.reads.append(i)
        return self.x[i], int(self.y[i])


def test_chunks_read_every_item_once_in_order_and_give_the_same_result(digits_model: robust.Classifier) -> None:
    data = Counted(50)
    whole = robust.evaluate(digits_model, (data.x, data.y), ["fgsm"], eps=0.1)
    result = robust.evaluate(digits_model, data, ["fgsm"], eps=0.1, chunk_size=16, workers=0)
    assert data.reads == list(range(50)), "each item once, in order"
    assert result.samples == whole.samples and result.dataset == "counted"
    assert [a.forward_samples for a in result.attacks] == [a.forward_samples for a in whole.attacks]
    assert result.attacks[0].forward_passes > whole.attacks[0].forward_passes, "one batch per chunk"
    assert result.attacks[0].attacked == whole.attacks[0].attacked
    assert result.attacks[0].median_linf == whole.attacks[0].median_linf


def test_a_data_loader_is_read_once(digits_model: robust.Classifier) -> None:
    data = Counted(40)
    loader = DataLoader(data, batch_size=7)
    result = robust.evaluate(digits_model, loader, ["fgsm"], eps=0.1, chunk_size=15)
    assert data.reads == list(range(40)) and result.n == 40


def test_detection_and_checks_over_chunks_match_one_chunk(digits_model: robust.Classifier, digits: Any) -> None:
    detector = robust.create_defense("feature-squeezing", bit_depth=3).detector(digits_model)
    detector.calibrate(digits.x[:100])
    runs = [robust.evaluate(digits_model, (digits.x[:120], digits.y[:120]), ["fgsm", "pgd:steps=5,random_start=false"],
                            eps=0.1, detector=detector, checks=True, chunk_size=size) for size in (None, 50)]
    assert runs[0].samples == runs[1].samples
    assert runs[0].detection == runs[1].detection and runs[0].detection["adversarial_n"] > 0
    assert [c["id"] for c in runs[0].checks] == [c["id"] for c in runs[1].checks]


def test_in_memory_data_is_one_chunk_without_copies(digits: Any) -> None:
    source = as_source((digits.x, digits.y))
    chunks = list(source.chunks(source.chunk_size(64)))
    assert len(chunks) == 1 and chunks[0].x.data_ptr() == digits.x.data_ptr()


def test_image_files_are_read_in_chunks_of_bounded_size() -> None:
    source = as_source(load_dataset("samples:imagenet"))
    assert source.chunk_size(4) == 256 * 2**20 // (3 * 224 * 224 * 4)
    shards = [[c.index.tolist() for c in source.chunks(8, workers=0, rank=r, world=2)] for r in range(2)]
    assert shards == [[list(range(0, 8)), list(range(16, 20))], [list(range(8, 16))]], "each process reads its own"


def test_examples_keep_their_size_and_class_names(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 10))
    result = robust.evaluate(robust.Classifier(net), "samples:cifar10", "pgd", eps=0.5, workers=0)
    assert result.examples and {(e["width"], e["height"]) for e in result.examples} == {(32, 32)}
    assert result.classes[:2] == ["airplane", "automobile"]
    html = robust.write_report(result, tmp_path / "r.html").read_text()
    first = result.examples[0]
    assert f'width="96"' in html and f"{first['label']} ({result.classes[first['label']]})" in html
