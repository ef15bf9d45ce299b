"""How an evaluation reads its points: chunk by chunk, so memory grows with the chunk, not the dataset.

A :class:`Source` wraps whatever the user gave (tensors, an :class:`ArrayDataset`, image
files, any map-style ``Dataset`` or a ``DataLoader``) and yields :class:`Chunk` s: the global
indices, images and labels of consecutive points. Data already in memory (tensors, array
files, MNIST) comes as one chunk, a view without copies. Everything else is read through a
``DataLoader`` with worker processes (decoding and resizing happen there, ahead of the
attacks), in chunks of about ``CHUNK_BYTES`` of float images, pinned when a GPU will read them.

Under ``torchrun`` a source read in several chunks is split by chunk: process ``r`` of ``w``
reads only the chunks ``r, r + w, ...``, so no process decodes another's images.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from robust.data.arrays import ArrayDataset, check_xy
from robust.data.images import ImageFiles
from robust.errors import RobustError

CHUNK_BYTES = 256 * 2**20  # float images read and attacked together when the data is not in memory
LOADER_BATCH = 32  # images per read of a worker: small, so prefetching holds little memory


@dataclass
class Chunk:
    """Consecutive points of a source: their global indices (n,), images (n, ...) and labels (n,)."""

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor


@dataclass
class Source:
    """Where an evaluation's points come from.

    Attributes:
        dataset: a map-style dataset of ``(image, label)`` (None for tensors in memory).
        x, y: the points when held in memory, else None.
        name, classes, credit: what the result records of the data.
        loader: a user's DataLoader, iterated as it is (its own workers and batches).
    """

    dataset: Dataset[Any] | None
    x: torch.Tensor | None
    y: torch.Tensor | None
    name: str
    classes: list[str]
    credit: str = ""
    loader: DataLoader[Any] | None = None

    def __len__(self) -> int:
        if self.x is not None:
            return len(self.x)
        base = self.loader.dataset if self.loader is not None else self.dataset
        try:
            return len(base)  # type: ignore[arg-type]
        except TypeError as exc:
            raise RobustError("the dataset must have a length (a map-style Dataset)") from exc

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    def chunk_size(self, batch_size: int, given: int | None = None) -> int:
        """Points per chunk: all of them in memory, else about ``CHUNK_BYTES`` of images (at least a batch)."""
        if given is not None:
            if isinstance(given, bool) or not isinstance(given, int) or given < 1:
                raise RobustError(f"chunk size must be a positive integer, got {given!r}")
            return given
        if self.in_memory:
            return max(len(self), 1)
        if self.loader is not None:
            batch = self.loader.batch_size or batch_size
            return max(batch_size, batch * max(CHUNK_BYTES // max(batch * 4 * _loader_image_numel(self.loader), 1), 1))
        first = self._first_image()
        return max(batch_size, CHUNK_BYTES // max(first.numel() * 4, 1))

    def chunks(self, size: int, *, workers: int | None = None, pin: bool = False, rank: int = 0,
               world: int = 1) -> Iterator[Chunk]:
        """The chunks of ``size`` points in order; with ``world`` > 1 and several chunks, only rank's share.

        Chunks that are read (not sliced from memory) are read one ahead, in a background
        thread, while the caller attacks the current one: at most two chunks are held at once.
        """
        if self.loader is not None:
            yield from ahead(self._from_loader(size, pin, rank, world))
            return
        n = len(self)
        starts = list(range(0, n, size))
        mine = starts if len(starts) == 1 or world == 1 else starts[rank::world]
        if self.x is not None and self.y is not None:
            for start in mine:
                stop = min(start + size, n)
                yield Chunk(torch.arange(start, stop), self.x[start:stop], self.y[start:stop])
            return
        yield from ahead(self._read([(start, min(start + size, n)) for start in mine], workers, pin))

    def identity(self) -> str:
        """A short hash of what the source holds, to match a resumable run's state file to its data."""
        if self.x is not None and self.y is not None:
            digest = hashlib.sha256()
            for t in (self.x, self.y):
                digest.update(t.detach().cpu().contiguous().numpy().tobytes())
            return digest.hexdigest()[:32]
        base = self.loader.dataset if self.loader is not None else self.dataset
        if isinstance(base, ImageFiles):
            return base.identity()
        return hashlib.sha256(f"{type(base).__name__}:{len(self)}:{self.name}".encode()).hexdigest()[:32]

    def _read(self, spans: list[tuple[int, int]], workers: int | None, pin: bool) -> Iterator[Chunk]:
        """The chunks ``[start, stop)`` of ``spans`` through one DataLoader, so its workers decode ahead."""
        assert self.dataset is not None
        indices = [i for start, stop in spans for i in range(start, stop)]
        loader = DataLoader(Subset(self.dataset, indices), batch_size=LOADER_BATCH,
                            num_workers=default_workers() if workers is None else workers, pin_memory=pin,
                            collate_fn=_collate)
        batches = iter(loader)
        carry: list[tuple[torch.Tensor, torch.Tensor]] = []
        for start, stop in spans:
            parts, held = carry, sum(len(p[0]) for p in carry)
            while held < stop - start:
                parts.append(next(batches))
                held += len(parts[-1][0])
            x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            need = stop - start
            carry = [(x[need:], y[need:])] if held > need else []
            yield self._chunk(start, [(x[:need], y[:need])], pin)

    def _from_loader(self, size: int, pin: bool, rank: int, world: int) -> Iterator[Chunk]:
        """A user's DataLoader in one pass, its batches gathered into chunks of ``size`` points."""
        assert self.loader is not None
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        held = start = number = 0
        for batch in self.loader:
            parts.append((torch.as_tensor(batch[0]), torch.as_tensor(batch[1])))
            held += len(parts[-1][0])
            while held >= size:
                x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
                if number % world == rank or world == 1:
                    yield self._chunk(start, [(x[:size], y[:size])], pin)
                parts, held, start, number = [(x[size:], y[size:])], held - size, start + size, number + 1
        if held and (number % world == rank or world == 1 or number == 0):
            yield self._chunk(start, parts, pin)

    def _chunk(self, start: int, parts: list[tuple[torch.Tensor, torch.Tensor]], pin: bool) -> Chunk:
        shapes = {tuple(p[0].shape[1:]) for p in parts if len(p[0])}
        if len(shapes) > 1:
            raise RobustError(f"images of {self.name} differ in size ({', '.join(map(str, sorted(shapes)))}); "
                              "resize and crop them to one size (--resize N --crop N)")
        x, y = check_xy(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        return Chunk(torch.arange(start, start + len(x)), x.pin_memory() if pin else x, y)

    def _first_image(self) -> torch.Tensor:
        assert self.dataset is not None
        if len(self) == 0:
            raise RobustError("the dataset is empty")
        return torch.as_tensor(self.dataset[0][0])


def ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """``chunks``, each read in a background thread while the caller works on the one before."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ready.put(("chunk", chunk), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(("done", None))
        except BaseException as exc:  # handed to the caller, in its thread
            ready.put(("error", exc))

    thread = threading.Thread(target=produce, name="robust-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()


def _loader_image_numel(loader: DataLoader[Any]) -> int:
    """Elements of one image of a loader's dataset (its first item), without iterating the loader."""
    try:
        return int(torch.as_tensor(loader.dataset[0][0]).numel())  # type: ignore[index]
    except (TypeError, IndexError, NotImplementedError):
        return 3 * 224 * 224


def _collate(items: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = [torch.as_tensor(i[0]) for i in items]
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise RobustError(f"images differ in size ({', '.join(map(str, sorted(shapes)))}); resize and crop them to "
                          "one size (--resize N --crop N)")
    return torch.stack(images), torch.as_tensor([int(i[1]) for i in items])


def default_workers() -> int:
    """DataLoader workers that decode ahead of the attacks: up to 4, one core left to the main process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - 1))


def as_source(data: Any) -> Source:
    """A :class:`Source` for tensors ``(x, y)``, a dataset (ours or any map-style one) or a DataLoader."""
    if isinstance(data, ArrayDataset):
        x, y = check_xy(data.x, data.y)
        return Source(None, x, y, data.name, list(data.classes), data.credit)
    if isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(torch.is_tensor(t) for t in data):
            raise RobustError("data given as a pair must be two tensors (x, y)")
        x, y = check_xy(data[0], data[1])
        return Source(None, x, y, "tensors", [])
    if isinstance(data, DataLoader):
        return Source(None, None, None, _name(data.dataset), _classes(data.dataset), loader=data)
    if isinstance(data, Dataset):
        return Source(data, None, None, _name(data), _classes(data), str(getattr(data, "credit", "")))
    raise RobustError(f"data must be (x, y) tensors, a Dataset, a DataLoader or a name, got {type(data).__name__}")


def _name(dataset: Any) -> str:
    return str(getattr(dataset, "name", type(dataset).__name__))


def _classes(dataset: Any) -> list[str]:
    classes = getattr(dataset, "classes", None)
    return [str(c) for c in classes] if isinstance(classes, (list, tuple)) else []
