"""Layers with PyTorch semantics (NHWC): default init, reflection padding, batch-stat BatchNorm."""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from nasdip_jax.imaging import resample
from nasdip_jax.nets import cpu_conv
from nasdip_jax.nets.cpu_conv import gemm
from nasdip_jax.nets.cpu_conv import shifted
from nasdip_jax.nets.cpu_conv import winograd

BN_EPS = 1e-5
LEAKY_SLOPE = 0.2
CONV_IMPLS = cpu_conv.IMPLS


def crop_to_reach(w, axes, size: int, dilation: int = 1):
  """A 'same' zero-padded stride-1 kernel without the taps that read only padding on an input
  whose longest side is `size` pixels (|tap - centre| * dilation >= size), cut equally on
  `axes`: the convolution is unchanged."""
  k = w.shape[axes[0]]
  r = min(k // 2, (size - 1) // dilation)
  for axis in axes:
    w = jax.lax.slice_in_dim(w, k // 2 - r, k // 2 + r + 1, axis=axis)
  return w


def same_conv(x, w, dilation: int = 1, groups: int = 1):
  """A stride-1 convolution of NHWC x, zero-padded to keep its size, with HWIO w (odd square
  kernel), as fast as XLA:CPU runs it forward (the ISNAS scorer's untrained networks): taps
  that read only padding dropped (`crop_to_reach`), then `cpu_conv.select_forward_same`'s
  path."""
  w = crop_to_reach(w, (0, 1), max(x.shape[1:3]), dilation)
  k = w.shape[0]
  p = dilation * (k // 2)
  depthwise = groups > 1 and groups == x.shape[-1] == w.shape[-1]
  path = cpu_conv.select_forward_same(k, x.shape[1], x.shape[2], depthwise=depthwise,
                                      grouped=groups > 1 and not depthwise)
  if path == "shifted":
    return shifted.depthwise_conv(x, w, p, dilation)
  if path == "gemm":
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return gemm.conv2d_gemm(x, w, 1, dilation)
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), ((p, p), (p, p)), rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


NEAREST_PHASE_MIN_SIDE = 16


def nearest_up_conv(x, w):
  """`same_conv` of x nearest-upsampled x2 (nn.Upsample(mode='nearest')), computed at x's
  resolution where that pays. Output pixel 2i + a (a = 0, 1; likewise columns) reads x only at
  i + floor((a + d - k // 2) / 2) for its taps d, so each of the 4 output phases is a
  convolution of x with the taps summed by the pixel they read, k // 2 + 1 per axis. Exact,
  zero padding included (the upsampled padding is x's). By kernel size (64 px out, 128
  channels, 2 cores):
  - 1: the 1x1 convolution of x, upsampled;
  - 5: both phases read offsets -1..1, so one 3x3 convolution with the 4 phases' outputs as
    channels (9 multiplications per output pixel instead of 25: 12 against 29 ms);
  - 7: the 4 phases' 4x4 convolutions (16 instead of 49: 24 against 58 ms);
  - 3: the upsampled convolution (its 2x2 phases gain ~1.25x, for 4 more convolutions to
    compile in every branch that has one).
  The scorer uses it on inputs with sides of at least NEAREST_PHASE_MIN_SIDE (on smaller ones
  XLA:CPU runs kernels about their size slowly)."""
  k = w.shape[0]
  if k == 1:
    return resample.upsample2x(same_conv(x, w), mode="nearest")
  if k == 3:
    return same_conv(resample.upsample2x(x, mode="nearest"), w)

  def grouped(w, axis, phase):  # the taps of `phase` summed by the input offset they read
    offsets = [(phase + d - k // 2) // 2 for d in range(k)]
    groups = [sum(jax.lax.index_in_dim(w, d, axis, False) for d in range(k) if offsets[d] == u)
              for u in range(offsets[0], offsets[-1] + 1)]
    return jnp.stack(groups, axis), (-offsets[0], offsets[-1])

  conv = lambda w, pad_h, pad_w: jax.lax.conv_general_dilated(
      x, w, (1, 1), (pad_h, pad_w), dimension_numbers=("NHWC", "HWIO", "NHWC"))
  kernels = []
  for a in (0, 1):
    wa, pad_h = grouped(w, 0, a)
    for b in (0, 1):
      wab, pad_w = grouped(wa, 1, b)
      kernels.append((wab, pad_h, pad_w))
  if all(pads == kernels[0][1:] for _, *pads in kernels):  # k // 2 even: one convolution
    y = conv(jnp.concatenate([kw for kw, _, _ in kernels], axis=-1), *kernels[0][1:])
  else:
    y = jnp.concatenate([conv(*kernel) for kernel in kernels], axis=-1)
  batch, h, wd, c = y.shape
  y = y.reshape(batch, h, wd, 2, 2, c // 4)  # phase (a, b) in channels (2a + b) * c / 4 on
  return y.transpose(0, 1, 3, 2, 4, 5).reshape(batch, 2 * h, 2 * wd, c // 4)


def torch_uniform(key, shape, fan_in: int):
  """PyTorch's default Conv2d init for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Conv(nnx.Module):
  """Conv2d: 'reflection' pads with ReflectionPad2d((k-1)//2), 'zero' pads inside the conv.

  Weights are HWIO; PyTorch OIHW weights convert with `w.transpose(2, 3, 1, 0)`. How it runs
  is `cpu_conv.select`'s choice from `conv_impl` ('auto': by shape, on CPU only) and the
  static `member_batched` and `forward_only` (part of the graph definition; see `specialise`).
  """

  def __init__(self, in_ch: int, out_ch: int, kernel: int, *, stride: int = 1,
               pad: str = "reflection", bias: bool = True, groups: int = 1, dilation: int = 1,
               conv_impl: str = "auto", member_batched: bool = False,
               forward_only: bool = False, rngs: nnx.Rngs):
    if pad not in ("reflection", "zero"):
      raise ValueError(f"pad must be 'reflection' or 'zero', got {pad!r}")
    fan_in = in_ch // groups * kernel * kernel
    self.kernel = nnx.Param(torch_uniform(rngs.params(), (kernel, kernel, in_ch // groups, out_ch),
                                          fan_in))
    self.bias = nnx.Param(torch_uniform(rngs.params(), (out_ch,), fan_in)) if bias else None
    self.stride, self.pad, self.groups, self.dilation = stride, pad, groups, dilation
    self.padding = dilation * (kernel - 1) // 2
    if conv_impl not in CONV_IMPLS:
      raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {conv_impl!r}")
    self.conv_impl = conv_impl
    self.member_batched, self.forward_only = member_batched, forward_only

  def __call__(self, x):
    p, kernel = self.padding, self.kernel[...]
    depthwise = self.groups == x.shape[-1] == kernel.shape[-1] and self.groups > 1
    path = cpu_conv.select(self.conv_impl, kernel.shape[0], self.stride, self.dilation,
                           x.shape[1], x.shape[2], depthwise=depthwise,
                           grouped=self.groups > 1 and not depthwise,
                           member_batched=self.member_batched, forward_only=self.forward_only)
    if path == "winograd":  # pads inside its tiles
      y = winograd.conv3x3(x, kernel, self.pad)
    else:
      if p and (self.pad == "reflection" or path == "gemm"):
        x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)),
                    mode="reflect" if self.pad == "reflection" else "constant")
        p = 0
      if path == "shifted":
        y = shifted.depthwise_conv(x, kernel, p, self.dilation)
      elif path == "gemm":
        y = gemm.conv2d_gemm(x, kernel, self.stride, self.dilation)
      else:
        y = jax.lax.conv_general_dilated(
            x, kernel, (self.stride, self.stride), ((p, p), (p, p)),
            rhs_dilation=(self.dilation, self.dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.groups)
    return y if self.bias is None else y + self.bias[...]


def specialise(module: nnx.Module, *, member_batched: bool = False, forward_only: bool = False):
  """`module` with every `Conv` in it told how it will run (`cpu_conv.select`'s member_batched
  and forward_only): static attributes, so the graph definition, and hence every program compiled
  from it, carries them. Returns the module (changed in place)."""
  for _, m in nnx.iter_modules(module):
    if isinstance(m, Conv):
      m.member_batched, m.forward_only = member_batched, forward_only
  return module


class BatchNorm(nnx.Module):
  """BatchNorm2d as DIP uses it: always batch statistics (biased variance, eps 1e-5).

  DIP never switches to eval mode, so no running averages are kept.
  """

  def __init__(self, ch: int):
    self.scale = nnx.Param(jnp.ones((ch,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((ch,), jnp.float32))

  def __call__(self, x):
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return (x - mean) * (jax.lax.rsqrt(var + BN_EPS) * self.scale[...]) + self.bias[...]


def leaky_relu(x):
  return jnp.where(x >= 0, x, LEAKY_SLOPE * x)


class ConvBNAct(nnx.Module):
  """Conv -> BatchNorm -> LeakyReLU(0.2), DIP's basic block."""

  def __init__(self, in_ch, out_ch, kernel, *, stride=1, pad="reflection", conv_impl="auto", rngs):
    self.conv = Conv(in_ch, out_ch, kernel, stride=stride, pad=pad, conv_impl=conv_impl, rngs=rngs)
    self.bn = BatchNorm(out_ch)

  def __call__(self, x):
    return leaky_relu(self.bn(self.conv(x)))
