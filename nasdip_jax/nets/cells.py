"""NAS-DIP's upsampling cells (NAS/operations.py, gen_upsample_layer.py) as NNX modules.

Reference semantics: cell convolutions use zero padding d(k-1)/2 and no bias; transposed
convolutions keep their bias; the activation follows the primitive and the transform (identity
ignores it); pixel shuffle maps out[c, 2h+i, 2w+j] = in[4c + 2i + j, h, w].
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasdip_jax.imaging import resample
from nasdip_jax.nets import layers
from nasdip_jax.space import genotype as gt


def pixel_shuffle(x):
  """PyTorch PixelShuffle(2) on NHWC: channel 4c + 2i + j goes to pixel (2h + i, 2w + j)."""
  n, h, w, c4 = x.shape
  x = x.reshape(n, h, w, c4 // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(n, 2 * h, 2 * w, c4 // 4)


def split_stack_sum(x):
  """Sums the four consecutive channel chunks: (.., C) -> (.., C/4)."""
  c = x.shape[-1] // 4
  return x[..., :c] + x[..., c:2 * c] + x[..., 2 * c:3 * c] + x[..., 3 * c:]


class Activation(nnx.Module):
  """none / ReLU / LeakyReLU(0.2), and the extended space's SELU / PReLU (one slope, 0.25)."""

  def __init__(self, name: str):
    if name not in gt.EXTENDED_ACTIVATIONS:
      raise ValueError(f"unknown activation {name!r}")
    self.name = name
    self.slope = nnx.Param(jnp.full((1,), 0.25, jnp.float32)) if name == "PReLU" else None

  def __call__(self, x):
    if self.name == "ReLU":
      return jax.nn.relu(x)
    if self.name == "LeakyReLU":
      return layers.leaky_relu(x)
    if self.name == "SELU":
      return jax.nn.selu(x)
    if self.name == "PReLU":
      return jnp.where(x >= 0, x, self.slope[...] * x)
    return x


class ConvTranspose(nnx.Module):
  """PyTorch ConvTranspose2d (bias, zero padding (k-1)/2, output_padding stride-1), stored IOHW.

  Init as PyTorch: U(+-1/sqrt(fan_in)) with fan_in = out_ch * k * k (weight dim 1 is out).
  """

  def __init__(self, in_ch, out_ch, kernel, *, stride=1, dilation=1, rngs: nnx.Rngs):
    fan_in = out_ch * kernel * kernel
    self.kernel = nnx.Param(layers.torch_uniform(rngs.params(), (in_ch, out_ch, kernel, kernel),
                                                 fan_in))
    self.bias = nnx.Param(layers.torch_uniform(rngs.params(), (out_ch,), fan_in))
    self.stride, self.dilation = stride, dilation

  def __call__(self, x):
    return conv_transpose(x, self.kernel[...], self.stride, self.dilation) + self.bias[...]


def conv_transpose(x, w_iohw, stride: int, dilation: int = 1):
  """PyTorch's ConvTranspose2d (no bias) with padding dilation * (k-1)/2 and output_padding
  stride - 1: the output is stride x the input. Stride 2 without dilation runs as four
  sub-pixel convolutions (XLA:CPU's input-dilated convolution is ~10x slower)."""
  k, d, s = w_iohw.shape[-1], dilation, stride
  if s == 2 and d == 1:
    return _conv_transpose_x2(x, w_iohw)
  p = d * (k - 1) // 2
  lo, hi = d * (k - 1) - p, d * (k - 1) - p + (s - 1)
  w = jnp.flip(w_iohw, (2, 3)).transpose(2, 3, 0, 1)  # IOHW -> flipped HWIO
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), ((lo, hi), (lo, hi)), lhs_dilation=(s, s), rhs_dilation=(d, d),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _phase_taps(k: int, r: int):
  """Output phase r of a x2 transposed convolution (padding (k-1)/2): y[2q + r] sums
  x[q + (r + p - t) / 2] w[t] over the taps t of parity r + p. Returns the taps ordered by
  increasing input offset and the (low, high) padding of the equivalent correlation."""
  p = (k - 1) // 2
  taps = [t for t in reversed(range(k)) if (t - r - p) % 2 == 0]
  offsets = [(r + p - t) // 2 for t in taps]
  return taps, (-offsets[0], offsets[-1]) if taps else (0, 0)


def _conv_transpose_x2(x, w_iohw):
  k = w_iohw.shape[-1]
  n, h, w_, _ = x.shape
  rows = []
  for rh in (0, 1):
    th, ph = _phase_taps(k, rh)
    cols = []
    for rw in (0, 1):
      tw, pw = _phase_taps(k, rw)
      if not th or not tw:
        cols.append(jnp.zeros((n, h, w_, w_iohw.shape[1]), x.dtype))
        continue
      sub = w_iohw[:, :, np.array(th)][:, :, :, np.array(tw)].transpose(2, 3, 0, 1)
      cols.append(jax.lax.conv_general_dilated(x, sub, (1, 1), (ph, pw),
                                               dimension_numbers=("NHWC", "HWIO", "NHWC")))
    rows.append(jnp.stack(cols, axis=3))         # (N, H, W, 2 [rw], C)
  y = jnp.stack(rows, axis=2)                     # (N, H, 2 [rh], W, 2 [rw], C)
  return y.reshape(n, 2 * h, 2 * w_, -1)


class Transform(nnx.Module):
  """The cell's feature transform from in_ch to out_ch channels (before its activation)."""

  def __init__(self, name, in_ch, out_ch, kernel, dilation, *, conv_impl, rngs):
    self.name = name
    conv = lambda i, o, k, groups=1: layers.Conv(i, o, k, pad="zero", bias=False, groups=groups,
                                                 dilation=dilation if k > 1 else 1,
                                                 conv_impl=conv_impl, rngs=rngs)
    self.ops = nnx.List([])
    if name == "conv":
      self.ops = nnx.List([conv(in_ch, out_ch, kernel)])
    elif name == "trans_conv":
      self.ops = nnx.List([ConvTranspose(in_ch, out_ch, kernel, dilation=dilation, rngs=rngs)])
    elif name == "split_stack_sum":
      self.ops = nnx.List([conv(in_ch // 4, out_ch, kernel)])
    elif name == "sep_conv":
      self.ops = nnx.List([conv(in_ch, in_ch, kernel, groups=in_ch), conv(in_ch, out_ch, 1)])
    elif name == "depth_wise_conv":
      self.ops = nnx.List([conv(in_ch, out_ch, kernel, groups=out_ch)])
    elif name != "identity":
      raise ValueError(f"unknown transform {name!r}")

  def __call__(self, x):
    if self.name == "split_stack_sum":
      x = split_stack_sum(x)
    for op in self.ops:
      x = op(x)
    return x


class UpCell(nnx.Module):
  """A x2 upsampling cell from a `Cell` genotype, C -> C channels."""

  def __init__(self, cell: gt.Cell, channels: int, *, conv_impl: str = "auto", rngs: nnx.Rngs):
    reason = gt.cell_error(cell, channels)
    if reason:
      raise gt.InvalidGenotype(f"cannot build {cell.describe()}: {reason}")
    self.cell = cell
    ps = cell.primitive == "pixel_shuffle"
    c_in = channels // 4 if ps and not cell.transform_first else channels
    c_out = 4 * channels if cell.transform_first else channels
    self.prim = (ConvTranspose(channels, channels, cell.kernel, stride=2, dilation=cell.dilation,
                               rngs=rngs) if cell.primitive == "trans_conv" else None)
    self.transform = Transform(cell.transform, c_in, c_out, cell.kernel, cell.dilation,
                               conv_impl=conv_impl, rngs=rngs)
    self.act1 = Activation(cell.activation)
    self.act2 = Activation(cell.activation if cell.transform != "identity" else "none")

  def _primitive(self, x):
    p = self.cell.primitive
    if p == "pixel_shuffle":
      return pixel_shuffle(x)
    if p == "trans_conv":
      return self.prim(x)
    return resample.upsample2x(x, p)

  def __call__(self, x):
    if self.cell.transform_first:
      return self.act2(self._primitive(self.act1(self.transform(x))))
    return self.act2(self.transform(self.act1(self._primitive(x))))


def num_cell_params(cell: gt.Cell, channels: int) -> int:
  """Parameters of one cell, by the reference's shapes (for checks without building)."""
  abstract = nnx.eval_shape(lambda: UpCell(cell, channels, rngs=nnx.Rngs(0)))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
