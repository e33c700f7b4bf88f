"""DIP's "skip" encoder-decoder (deep-image-prior models/skip.py) as a Flax NNX module.

Level i runs at H/2^i: an optional 1x1 skip branch and a deeper branch (stride-2 3x3 conv, 3x3 conv,
level i+1, x2 upsampling) are concatenated skip-first, then BN, a 3x3 conv and a 1x1 conv (each
conv followed by BN and LeakyReLU). A 1x1 head and a sigmoid give the image.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from nasdip_jax.imaging import resample
from nasdip_jax.nets import cells
from nasdip_jax.nets import layers
from nasdip_jax.space import genotype as gt


def _center_crop_concat(a, b):
  """The reference Concat: centre-crop both branches to the smaller size, then stack channels."""
  h, w = min(a.shape[1], b.shape[1]), min(a.shape[2], b.shape[2])

  def crop(t):
    dh, dw = (t.shape[1] - h) // 2, (t.shape[2] - w) // 2
    return t[:, dh:dh + h, dw:dw + w]

  return jnp.concatenate([crop(a), crop(b)], axis=-1)


class _Level(nnx.Module):

  def __init__(self, d_in, down, skip, up, deeper_out, *, k_down, k_up, k_skip, need1x1_up, pad,
               conv_impl, rngs):
    block = lambda i, o, k, stride=1: layers.ConvBNAct(i, o, k, stride=stride, pad=pad,
                                                       conv_impl=conv_impl, rngs=rngs)
    self.skip = block(d_in, skip, k_skip) if skip else None
    self.down1 = block(d_in, down, k_down, stride=2)
    self.down2 = block(down, down, k_down)
    self.bn_cat = layers.BatchNorm(skip + deeper_out)
    self.up1 = block(skip + deeper_out, up, k_up)
    self.up2 = block(up, up, 1) if need1x1_up else None


class SkipNet(nnx.Module):
  """The DIP skip network; defaults are the standard 32-in configuration (2,217,831 params).

  With `cell`, every level upsamples with that NAS-DIP cell instead of `upsample` (NAS-DIP's
  stage-1 search network, DIP/models/skip_search_up.py).
  """

  def __init__(self, in_ch: int = 32, out_ch: int = 3, *,
               channels_down: Sequence[int] = (128,) * 5,
               channels_up: Sequence[int] = (128,) * 5,
               channels_skip: Sequence[int] = (4,) * 5,
               kernel_down: int = 3, kernel_up: int = 3, kernel_skip: int = 1,
               upsample: str | Sequence[str] = "bilinear", need1x1_up: bool = True,
               pad: str = "reflection", conv_impl: str = "auto",
               cell: gt.Cell | None = None, rngs: nnx.Rngs):
    n = len(channels_down)
    if not len(channels_up) == len(channels_skip) == n:
      raise ValueError("channels_down, channels_up and channels_skip need the same length")
    modes = (upsample,) * n if isinstance(upsample, str) else tuple(upsample)
    for m in modes:
      if m not in resample.UPSAMPLE_MODES:
        raise ValueError(f"unknown upsampling mode {m!r}; choose from {resample.UPSAMPLE_MODES}")
    self.upsample_modes = modes
    levels = []
    for i in range(n):
      d_in = in_ch if i == 0 else channels_down[i - 1]
      deeper_out = channels_up[i + 1] if i + 1 < n else channels_down[i]
      levels.append(_Level(d_in, channels_down[i], channels_skip[i], channels_up[i], deeper_out,
                           k_down=kernel_down, k_up=kernel_up, k_skip=kernel_skip,
                           need1x1_up=need1x1_up, pad=pad, conv_impl=conv_impl, rngs=rngs))
    self.levels = nnx.List(levels)
    self.cells = None if cell is None else nnx.List([
        cells.UpCell(cell, channels_up[i + 1] if i + 1 < n else channels_down[i],
                     conv_impl=conv_impl, rngs=rngs) for i in range(n)])
    self.head = layers.Conv(channels_up[0], out_ch, 1, pad=pad, conv_impl=conv_impl, rngs=rngs)

  def _level(self, i, x, drop):
    lv = self.levels[i]
    d = drop(lv.down2(drop(lv.down1(x), 4 * i)), 4 * i + 1)
    if i + 1 < len(self.levels):
      d = self._level(i + 1, d, drop)
    d = (self.cells[i](d) if self.cells is not None
         else resample.upsample2x(d, self.upsample_modes[i]))
    y = _center_crop_concat(lv.skip(x), d) if lv.skip is not None else d
    y = drop(lv.up1(lv.bn_cat(y)), 4 * i + 2)
    return drop(lv.up2(y), 4 * i + 3) if lv.up2 is not None else y

  def __call__(self, z, dropout=None):
    """The image for input z; `dropout=(key, keep)` drops each element of every encoder and
    decoder block's output with probability 1 - keep (inverted dropout, a mask per block drawn
    from fold_in(key, block))."""
    return jax.nn.sigmoid(self.head(self._level(0, z, _dropper(dropout))))


def _dropper(dropout):
  """(x, site) -> x, or x with inverted dropout from (key, keep)."""
  if dropout is None:
    return lambda x, site: x
  key, keep = dropout

  def drop(x, site):
    kept = jax.random.bernoulli(jax.random.fold_in(key, site), keep, x.shape)
    return jnp.where(kept, x / keep, 0.0)

  return drop
