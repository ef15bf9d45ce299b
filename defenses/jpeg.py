"""JPEG compression as an input-purification defense (Dziugaite et al. 2016, arXiv:1608.00853;
Das et al. 2017, arXiv:1705.02900), attacked adaptively.

The default backend is baseline JPEG written as batched tensor ops, so it runs on the
model's device with no per-image loop: 8x8 blocks, the DCT-II as one 64x64 matrix product,
the standard quantization tables of ITU-T T.81 Annex K scaled by quality as libjpeg does,
libjpeg's quantizer rounding, and for RGB images the JFIF YCbCr transform with 4:2:0 chroma subsampling and
libjpeg's "fancy" (triangle) upsampling. It matches libjpeg-turbo's output to within a few
grey levels (libjpeg uses fixed-point DCTs). ``backend="codec"`` runs torchvision's real
codec instead (libjpeg-turbo on the CPU, nvJPEG on a GPU).

Gradients: ``bpda`` (identity, default), ``approx`` (kornia's differentiable JPEG, Reich
et al. 2024 / Shin and Song 2017) or ``exact`` (autograd through the rounding: zero
almost everywhere, the naive evaluation that reports false robustness).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from robust.defense import PreprocessingDefense
from robust.params import Param

LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=torch.float32)
CHROMA = torch.full((8, 8), 99.0)
CHROMA[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]])


def quant_table(base: torch.Tensor, quality: int) -> torch.Tensor:
    """libjpeg's quality scaling of a base table (baseline: entries in [1, 255])."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return torch.floor((base * scale + 50) / 100).clamp(1, 255)


def dct_matrix(device: torch.device) -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix D, so that a block's coefficients are D @ B @ D.T."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device=device, dtype=torch.float32)


def _blocks(plane: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """(N, H, W) -> (N, H/8, W/8, 8, 8), edge-padded to multiples of 8 as libjpeg does."""
    n, h, w = plane.shape
    ph, pw = -h % 8, -w % 8
    if ph or pw:
        plane = F.pad(plane[:, None], (0, pw, 0, ph), mode="replicate")[:, 0]
    hb, wb = plane.shape[1] // 8, plane.shape[2] // 8
    return plane.reshape(n, hb, 8, wb, 8).transpose(2, 3), (h, w)


def _unblocks(blocks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    n, hb, wb = blocks.shape[:3]
    return blocks.transpose(2, 3).reshape(n, hb * 8, wb * 8)[:, :size[0], :size[1]]


def quantize(coef: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """libjpeg's quantizer: the DCT output scaled by 8 and rounded, then divided by 8 * Q with
    rounding half away from zero."""
    scaled = torch.round(coef * 8)
    return torch.sign(scaled) * torch.floor((scaled.abs() + 4 * table) / (8 * table))


def code_plane(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Encode and decode one component: level shift, DCT, quantize, dequantize, inverse DCT.

    The 2-D DCT of a block is one 64x64 matrix product: vec(D B D^T) = (D kron D) vec(B).
    """
    d = dct_matrix(plane.device)
    basis = torch.kron(d, d)
    blocks, size = _blocks(plane - 128)
    shape = blocks.shape
    flat_table = table.reshape(64)
    coef = quantize(blocks.reshape(-1, 64) @ basis.T, flat_table) * flat_table
    return _unblocks((coef @ basis).reshape(shape), size) + 128


def _rgb_to_ycbcr(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    return y, cb, cr


def _ycbcr_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    cb, cr = cb - 128, cr - 128
    return torch.stack([y + 1.402 * cr, y - 0.344136286 * cb - 0.714136286 * cr, y + 1.772 * cb], 1)


def _subsample(plane: torch.Tensor) -> torch.Tensor:
    """2x2 averaging (4:2:0), edge-padding odd sizes."""
    h, w = plane.shape[-2:]
    plane = F.pad(plane[:, None], (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(plane, 2)[:, 0]


def _upsample(plane: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """libjpeg's fancy upsampling: weights 3/4 and 1/4, which is bilinear with half-pixel centres."""
    up = F.interpolate(plane[:, None], scale_factor=2, mode="bilinear", align_corners=False)
    return up[:, 0, :size[0], :size[1]]


CHUNK = 256  # images per step on the CPU, so that the intermediate tensors stay in cache


def jpeg_tensor(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """Baseline JPEG round trip of (N, C, H, W) pixel values in [0, 255]; returns rounded values."""
    if pixels.device.type == "cpu" and len(pixels) > CHUNK:
        return torch.cat([_jpeg(pixels[i:i + CHUNK], quality) for i in range(0, len(pixels), CHUNK)])
    return _jpeg(pixels, quality)


def _jpeg(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    pixels = torch.round(pixels.float()).clamp(0, 255)
    luma, chroma = quant_table(LUMA, quality).to(pixels.device), quant_table(CHROMA, quality).to(pixels.device)
    if pixels.shape[1] != 3:
        planes = [code_plane(pixels[:, c], luma) for c in range(pixels.shape[1])]
        return torch.round(torch.stack(planes, 1)).clamp(0, 255)
    y, cb, cr = (torch.round(p) for p in _rgb_to_ycbcr(pixels))
    size = (pixels.shape[2], pixels.shape[3])
    y = torch.round(code_plane(y, luma)).clamp_(0, 255)
    cb, cr = (torch.round(_upsample(torch.round(code_plane(torch.round(_subsample(p)), chroma)).clamp_(0, 255), size))
              for p in (cb, cr))
    return torch.round(_ycbcr_to_rgb(y, cb, cr)).clamp_(0, 255)


def jpeg_codec(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """The real codec through torchvision: nvJPEG for RGB batches on CUDA, libjpeg-turbo otherwise.

    nvJPEG encodes only three-channel images and decodes only from bytes held on the CPU, so
    greyscale batches on CUDA go through the CPU codec and the result comes back to the device.
    """
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs in favour of torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import decode_jpeg, encode_jpeg

        on_gpu = pixels.is_cuda and pixels.shape[1] == 3
        device = pixels.device if on_gpu else torch.device("cpu")
        as_bytes = torch.round(pixels).clamp(0, 255).to(device=device, dtype=torch.uint8)
        encoded = [data.cpu() for data in encode_jpeg(list(as_bytes), quality=quality)]
        decoded = decode_jpeg(encoded, device=device)
    return torch.stack(list(decoded)).to(device=pixels.device, dtype=pixels.dtype)


class JPEG(PreprocessingDefense):
    """JPEG compression of the input (quality 1-100); BPDA gradients by default."""

    name = "jpeg"
    parameters = (
        Param("quality", int, 75, "JPEG quality, as libjpeg scales its tables", low=1, high=100),
        Param("backend", str, "tensor", "tensor: batched tensor ops on the model's device; codec: torchvision's codec",
              choices=("tensor", "codec")),
    )
    gradient_modes = ("bpda", "approx", "exact")

    def transform(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        params = self.params
        lo, hi = bounds
        pixels = (x - lo) / (hi - lo) * 255
        code = jpeg_tensor if params["backend"] == "tensor" else jpeg_codec
        return code(pixels, params["quality"]) / 255 * (hi - lo) + lo

    def approximation(self, x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        from kornia.enhance import jpeg_codec_differentiable

        lo, hi = bounds
        unit = (x - lo) / (hi - lo)
        rgb = unit.expand(-1, 3, -1, -1) if unit.shape[1] == 1 else unit
        quality = torch.tensor([float(self.params["quality"])], device=x.device)
        out = jpeg_codec_differentiable(rgb, quality)
        out = out.mean(1, keepdim=True) if unit.shape[1] == 1 else out
        return out * (hi - lo) + lo
