"""Datasets: embedded MNIST and digits, users' files, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import robust
from robust.data import load_dataset


def test_mnist_is_the_official_test_set() -> None:
    data = load_dataset("mnist")
    assert data.x.shape == (10000, 1, 28, 28) and data.y.shape == (10000,)
    assert data.y[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) == 1.0
    assert torch.equal(data.y.bincount(), torch.tensor([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]))
    assert "CC BY-SA 3.0" in data.credit


def test_mnist_train_and_n() -> None:
    assert len(load_dataset("mnist", split="train")) == 60000
    assert len(load_dataset("mnist", n=7)) == 7


def test_digits() -> None:
    test, train = load_dataset("digits"), load_dataset("digits", split="train")
    assert test.x.shape == (500, 1, 8, 8) and len(train) == 1297
    assert float(test.x.max()) <= 1.0


def test_npz_and_pt_files(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    y = np.arange(5)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    for name in ("d.npz", "d.pt"):
        data = load_dataset(str(tmp_path / name))
        assert data.x.shape == (5, 1, 28, 28) and data.y.tolist() == list(range(5))


def test_uint8_images_are_scaled(tmp_path: Path) -> None:
    np.savez(tmp_path / "u.npz", x=np.full((2, 1, 4, 4), 255, np.uint8), y=np.array([0, 1]))
    assert float(load_dataset(str(tmp_path / "u.npz")).x.max()) == 1.0


def test_image_folder(tmp_path: Path) -> None:
    from torchvision.io import write_png

    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(2):
            write_png(torch.full((1, 6, 6), 40 * i, dtype=torch.uint8), str(tmp_path / label / f"{i}.png"))
    data = load_dataset(str(tmp_path))
    assert data.classes == ["cat", "dog"] and data.labels == [0, 0, 1, 1]
    assert len(data) == 4 and tuple(data[3][0].shape) == (1, 6, 6) and float(data[3][0].max()) == pytest.approx(40 / 255)


def test_torchvision_reader_without_download(tmp_path: Path) -> None:
    with pytest.raises(robust.RobustError, match="no mnist data"):
        load_dataset(f"mnist:{tmp_path}")


@pytest.mark.parametrize(("name", "message"), [
    ("minst", "did you mean 'mnist'"),
    ("/no/such/file.npz", "not found"),
])
def test_errors_name_the_problem(name: str, message: str) -> None:
    with pytest.raises(robust.RobustError, match=message):
        load_dataset(name)


def test_bad_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 4, 4), np.float32), y=np.zeros(3, np.float32))
    with pytest.raises(robust.RobustError, match="integers"):
        load_dataset(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(robust.RobustError, match="'x' and 'y'"):
        load_dataset(str(tmp_path / "b.npz"))
