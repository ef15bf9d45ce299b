"""Windows and L2 proposals of the Square attack (Andriushchenko et al. 2020, arXiv:1912.00049).

Every sample draws its own window positions; a window becomes a mask by comparing
``arange`` grids with the per-sample corners, so a whole batch moves in a few tensor ops.

The L2 attack starts from a grid of tiles, each holding a signed two-lobe pattern
(:func:`lobes`), rescaled so the perturbation has L2 norm eps. Each proposal then moves
mass between two random windows of size s: the second window is emptied and the first gets
a fresh signed pattern plus its old content, rescaled so that, per channel, the energy of
both windows plus the unused budget ``(eps^2 - ||delta||^2) / C`` lands in the first one.

Shapes: images (n, C, H, W); corners (n,) long; masks (n, 1, H, W) bool.
"""

from __future__ import annotations

import functools

import torch

from robust.attack import clip, per_sample


def random_corners(n: int, size: int, height: int, width: int, generator: torch.Generator,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample top and left corners (n,) of a ``size`` x ``size`` window inside the image, uniform."""
    top = torch.randint(0, height - size + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, width - size + 1, (n,), generator=generator, device=device)
    return top, left


def window_masks(top: torch.Tensor, left: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """Masks (n, 1, H, W) of the windows ``[top, top + size) x [left, left + size)``, one per sample."""
    rows = torch.arange(height, device=top.device)
    cols = torch.arange(width, device=top.device)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def random_signs(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Independent +1/-1 draws of ``shape``, with the dtype and device of ``like``."""
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return bits.to(like.dtype) * 2 - 1


def unit(delta: torch.Tensor) -> torch.Tensor:
    """``delta`` scaled to L2 norm 1 per sample (zero stays zero)."""
    return delta / per_sample(delta.flatten(1).norm(dim=1) + 1e-12, delta)


def rings(rows: int, cols: int) -> torch.Tensor:
    """A rows x cols patch of concentric rectangles around its centre, unit L2 norm (float64).

    Ring k (Chebyshev distance k from the centre pixel ``(rows // 2, cols // 2)``) lies inside
    rectangles k, k + 1, ...; rectangle j adds ``1 / (j + 1)^2``, so the value decays outwards.
    """
    if rows == 0 or cols == 0:
        return torch.zeros(rows, cols, dtype=torch.float64)
    count = max(rows // 2, cols // 2) + 1
    weights = 1.0 / torch.arange(1, count + 1, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[k] = sum of weights[k:]
    dist_r = (torch.arange(rows) - rows // 2).abs()
    dist_c = (torch.arange(cols) - cols // 2).abs()
    patch = tail[torch.maximum(dist_r[:, None], dist_c[None, :])]
    return patch / patch.norm()


@functools.lru_cache(maxsize=64)
def lobes(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The two-lobe pattern of a window (positive rings on top, negative below), unit L2 norm,
    and its transpose: (2, size, size)."""
    pattern = torch.cat([rings(size // 2, size), -rings(size - size // 2, size)])
    pattern = pattern / pattern.norm()
    return torch.stack([pattern, pattern.t()]).to(device=device, dtype=dtype)


def l2_size(p: float, height: int, width: int) -> int:
    """Side of the L2 windows for fraction ``p``: odd, at least 3, at most the image (like the reference)."""
    side = max(int(round((p * height * width) ** 0.5)), 3)
    side += 1 - side % 2
    return min(side, height, width)


def l2_start(x: torch.Tensor, eps: float, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """The L2 starting points (n, C, H, W): tiles of side ``H // 5`` from a centred offset, each a
    two-lobe pattern (transposed or not per tile) with a sign per sample, channel and tile."""
    n, c, h, w = x.shape
    side = max(h // 5, 1)
    offset = max((h - 5 * side) // 2, 0)
    tiles_h, tiles_w = max(h // side, 1), max(w // side, 1)
    flips = torch.randint(0, 2, (tiles_h, tiles_w), generator=generator, device=x.device)
    signs = random_signs((n, c, tiles_h, tiles_w), generator, x)
    rows = torch.arange(h, device=x.device) - offset
    cols = torch.arange(w, device=x.device) - offset
    inside = ((rows >= 0) & (rows < tiles_h * side))[:, None] & ((cols >= 0) & (cols < tiles_w * side))[None, :]
    tile_r, tile_c = (rows.clamp(min=0) // side).clamp(max=tiles_h - 1), (cols.clamp(min=0) // side).clamp(max=tiles_w - 1)
    local_r, local_c = rows.clamp(min=0) % side, cols.clamp(min=0) % side
    pattern = lobes(side, x.device, x.dtype)[flips[tile_r[:, None], tile_c[None, :]], local_r[:, None], local_c[None, :]]
    delta = signs[:, :, tile_r[:, None], tile_c[None, :]] * (pattern * inside)
    return clip(x + eps * unit(delta), bounds)


def l2_step(x: torch.Tensor, best: torch.Tensor, eps: float, size: int, bounds: tuple[float, float],
            generator: torch.Generator) -> torch.Tensor:
    """One L2 proposal (n, C, H, W) per sample from the current points ``best``: the mass of two
    random windows moves into the first, with a fresh signed pattern; the result has norm eps."""
    n, c, h, w = x.shape
    delta = best - x
    top, left = random_corners(n, size, h, w, generator, x.device)
    first = window_masks(top, left, size, h, w)
    second = window_masks(*random_corners(n, size, h, w, generator, x.device), size, h, w)
    flips = torch.randint(0, 2, (n,), generator=generator, device=x.device)
    local_r = (torch.arange(h, device=x.device) - top[:, None]).clamp(0, size - 1)  # (n, H): row inside the window
    local_c = (torch.arange(w, device=x.device) - left[:, None]).clamp(0, size - 1)
    pattern = lobes(size, x.device, x.dtype)[flips[:, None, None], local_r[:, :, None], local_c[:, None, :]]
    old = delta * first
    old_norm = old.square().sum(dim=(2, 3), keepdim=True).sqrt()  # (n, C, 1, 1)
    both_norm = (delta * (first | second)).square().sum(dim=(2, 3), keepdim=True).sqrt()
    image_norm = per_sample(delta.flatten(1).norm(dim=1), x)
    new = pattern[:, None] * first * random_signs((n, c, 1, 1), generator, x) + old / (old_norm + 1e-12)
    energy = ((eps ** 2 - image_norm.square()).clamp_min(0) / c + both_norm.square()).sqrt()
    new = new / (new.square().sum(dim=(2, 3), keepdim=True).sqrt() + 1e-12) * energy
    delta = torch.where(first, new, torch.where(second, torch.zeros_like(delta), delta))
    return clip(x + eps * unit(delta), bounds)
