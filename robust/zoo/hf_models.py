"""Hugging Face image classifiers: ``hf:FOLDER``, a folder written by ``save_pretrained``.

The model is ``AutoModelForImageClassification.from_pretrained(FOLDER, local_files_only=True)``:
nothing is downloaded, so a hub model must first be saved to a local folder. Its logits come
from the output object's ``logits`` (the :class:`~robust.Classifier` takes them).

Inputs are images in [0, 1] (bounds (0, 1)), i.e. the 8-bit pixel values divided by 255. An
image processor takes 8-bit pixels, multiplies them by ``rescale_factor`` when ``do_rescale``
(1/255 for nearly every model), then subtracts ``image_mean`` and divides by ``image_std`` when
``do_normalize``. Both steps are folded into the Classifier's mean and std, so a processor
with another rescale factor (or none) still sees exactly the values it expects. Its ``size``
(``shortest_edge``, or the smaller of ``height``/``width``) and ``crop_size`` become the
:class:`~robust.model.Preprocessing`: resize the short side, then center crop a square (a
batch needs one size; a processor that resizes to a non-square height x width without
keeping the aspect ratio is approximated by that). A ``crop_pct`` (ConvNeXT, PoolFormer)
resizes to ``size / crop_pct`` first, as those processors do below 384 pixels.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from robust.errors import RobustError
from robust.model import Preprocessing
from robust.zoo.normalization import InputSettings

PROCESSOR_FILE = "preprocessor_config.json"


def load_hf(path: str, weights: str | None) -> tuple[nn.Module, InputSettings]:
    """The image classifier saved in folder ``path`` (in eval mode) and the settings of its image processor."""
    if weights is not None:
        raise RobustError(f"hf:{path} reads its weights from the folder; drop --weights")
    transformers = _import_transformers()
    folder = _folder(path)
    with _quiet(transformers):
        model = _model(transformers, folder)
        processor = _processor(transformers, folder)
    found = processor_settings(processor) if processor is not None else _without_processor(folder, model)
    return model.eval(), found


def _folder(path: str) -> Path:
    folder = Path(path)
    if not path.strip() or not folder.is_dir():
        raise RobustError(f"hf:{path}: no such folder; hf: loads a local folder written by save_pretrained "
                          "(config.json and the weights); nothing is downloaded, so save a hub model locally first")
    if not (folder / "config.json").is_file():
        raise RobustError(f"{folder} is not a Hugging Face model folder: it has no config.json "
                          "(save_pretrained writes config.json and model.safetensors)")
    return folder


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise RobustError("transformers is not installed: pip install 'robust[hf]'") from exc
    return transformers


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """Without transformers' progress bars ("Loading weights"), which would interleave with ours."""
    bars = transformers.utils.logging
    shown = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            bars.enable_progress_bar()


def _model(transformers: Any, folder: Path) -> nn.Module:
    try:
        model: nn.Module = transformers.AutoModelForImageClassification.from_pretrained(str(folder),
                                                                                         local_files_only=True)
    except Exception as exc:
        raise RobustError(f"{folder} does not hold an image classifier that transformers can load "
                          f"(AutoModelForImageClassification): {str(exc).splitlines()[0]}") from exc
    return model


def _processor(transformers: Any, folder: Path) -> Any:
    if not (folder / PROCESSOR_FILE).is_file():
        return None
    try:
        return transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise RobustError(f"cannot read the image processor in {folder / PROCESSOR_FILE}: "
                          f"{str(exc).splitlines()[0]}") from exc


def _without_processor(folder: Path, model: nn.Module) -> InputSettings:
    warnings.warn(f"{folder} has no {PROCESSOR_FILE}: no normalization is applied; give the model's "
                  "mean and std (--normalization, or --mean and --std) if it expects one", stacklevel=3)
    size = _side(getattr(getattr(model, "config", None), "image_size", None))
    return InputSettings(preprocessing=Preprocessing(resize=size, crop=size) if size else None)


def processor_settings(processor: Any) -> InputSettings:
    """Bounds (0, 1), mean, std and preprocessing from an image processor (see the module's docstring)."""
    scale = 255.0 * float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else 255.0
    if math.isclose(scale, 1.0, rel_tol=1e-6):
        scale = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    if getattr(processor, "do_normalize", False):
        mean, std = _values(processor.image_mean), _values(processor.image_std)
    if scale == 1.0 and mean == (0.0,) and std == (1.0,):
        return InputSettings(preprocessing=_preprocessing(processor))
    return InputSettings(mean=tuple(m / scale for m in mean), std=tuple(s / scale for s in std),
                         preprocessing=_preprocessing(processor))


def _values(value: Any) -> tuple[float, ...]:
    return (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)


def _preprocessing(processor: Any) -> Preprocessing | None:
    size = getattr(processor, "size", None)
    side = _side(size) if getattr(processor, "do_resize", True) else None
    crop = _side(getattr(processor, "crop_size", None)) if getattr(processor, "do_center_crop", False) else None
    pct = getattr(processor, "crop_pct", None)
    if side is not None and pct and _get(size, "shortest_edge") and side < 384:
        return Preprocessing(resize=math.floor(side / float(pct)), crop=crop or side)
    if side is None and crop is None:
        return None
    return Preprocessing(resize=side, crop=crop or side)


def _side(size: Any) -> int | None:
    """The short side of a processor's size: an int, ``shortest_edge``, or the smaller of ``height``/``width``."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    if isinstance(size, (tuple, list)) and size:
        return int(min(size))
    edge, height, width = _get(size, "shortest_edge"), _get(size, "height"), _get(size, "width")
    if edge:
        return int(edge)
    return int(min(height, width)) if height and width else None


def _get(size: Any, key: str) -> Any:
    """``size[key]`` for a dict or transformers' ``SizeDict``, None when absent."""
    getter = getattr(size, "get", None)
    return getter(key) if callable(getter) else None
