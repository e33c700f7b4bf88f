"""Resampling exactly as the references do it: the DIP Lanczos-2 downsampler, PyTorch's x2
upsampling modes (bilinear, bicubic A=-0.75, nearest), and Pillow's Lanczos resize.

Arrays are NHWC (batch, height, width, channels).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

# Two-tap rows for x2 upsampling with half-pixel centres (PyTorch align_corners=False).
# Even output 2i reads inputs i-2..i+1, odd output 2i+1 reads i-1..i+2 (edge-clamped).
_CUBIC_EVEN = (-0.03515625, 0.26171875, 0.87890625, -0.10546875)
UPSAMPLE_TAPS = {
    "bilinear": ((0.0, 0.25, 0.75, 0.0), (0.0, 0.75, 0.25, 0.0)),
    "bicubic": (_CUBIC_EVEN, _CUBIC_EVEN[::-1]),
}
UPSAMPLE_MODES = ("bilinear", "bicubic", "nearest")


@functools.lru_cache(maxsize=None)
def lanczos2_kernel(factor: int) -> np.ndarray:
  """The (4f x 4f) float64 Lanczos-2 kernel of DIP's `Downsampler(phase=0.5)`; sums to 1."""
  width = 4 * factor + 1
  center = (width + 1) / 2.0
  d = np.abs(np.arange(1, width) + 0.5 - center) / factor
  with np.errstate(divide="ignore", invalid="ignore"):
    v = np.where(d == 0, 1.0, 2.0 * np.sin(np.pi * d) * np.sin(np.pi * d / 2.0) / (np.pi**2 * d**2))
  kernel = np.outer(v, v)
  return kernel / kernel.sum()


def lanczos2_downsample(x: jax.Array, factor: int) -> jax.Array:
  """DIP's loss operator for SR: replication pad (3f/2), then a stride-f per-channel conv."""
  k = lanczos2_kernel(factor)
  c = x.shape[-1]
  pad = (k.shape[0] - factor) // 2
  xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  w = jnp.asarray(np.tile(k.astype(np.float32)[:, :, None, None], (1, 1, 1, c)))
  return jax.lax.conv_general_dilated(
      xp, w, (factor, factor), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=c, precision=jax.lax.Precision.HIGHEST)


def _upsample_axis(x: jax.Array, axis: int, taps_even, taps_odd) -> jax.Array:
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (2, 2)
  xp = jnp.pad(x, pad, mode="edge")

  def tap_sum(taps, start):
    terms = [t * jax.lax.slice_in_dim(xp, start + k, start + k + n, axis=axis)
             for k, t in enumerate(taps) if t != 0.0]
    return functools.reduce(jnp.add, terms)

  even, odd = tap_sum(taps_even, 0), tap_sum(taps_odd, 1)
  out = jnp.stack([even, odd], axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = 2 * n
  return out.reshape(shape)


def upsample2x(x: jax.Array, mode: str) -> jax.Array:
  """PyTorch `nn.Upsample(scale_factor=2, mode)` with align_corners=False, on NHWC."""
  if mode == "nearest":
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  if mode not in UPSAMPLE_TAPS:
    raise ValueError(f"unknown upsampling mode {mode!r}; choose from {UPSAMPLE_MODES}")
  even, odd = UPSAMPLE_TAPS[mode]
  return _upsample_axis(_upsample_axis(x, 1, even, odd), 2, even, odd)


def pil_resize(img: np.ndarray, size_wh: tuple[int, int],
               resample=Image.Resampling.LANCZOS) -> np.ndarray:
  """Pillow resize of a uint8 (H, W, C) image to (W, H); LANCZOS is the reference's ANTIALIAS."""
  squeeze = img.shape[-1] == 1
  pil = Image.fromarray(img[..., 0] if squeeze else img)
  out = np.asarray(pil.resize(size_wh, resample), dtype=np.uint8)
  return out.reshape(out.shape[0], out.shape[1], -1)
