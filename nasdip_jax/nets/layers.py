"""Layers with PyTorch semantics (NHWC): default init, reflection padding, batch-stat BatchNorm."""

import contextlib
import contextvars
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from nasdip_jax.imaging import resample
from nasdip_jax.nets import conv_gemm
from nasdip_jax.nets import conv_winograd

BN_EPS = 1e-5
LEAKY_SLOPE = 0.2
CONV_IMPLS = ("auto", "xla", "gemm", "winograd")

GEMM_1X1_MIN_PIXELS = 32 * 32
SMALL_SIDE = 4
WINOGRAD_MIN_PIXELS = 128 * 128
WINOGRAD_MIN_PIXELS_FORWARD = 32 * 32
_MEMBER_BATCHED = contextvars.ContextVar("member_batched", default=False)
_FORWARD_ONLY = contextvars.ContextVar("forward_only", default=False)


@contextlib.contextmanager
def member_batched():
  """Tells the layers traced inside that they run vmapped over cohort members (for 'auto')."""
  token = _MEMBER_BATCHED.set(True)
  try:
    yield
  finally:
    _MEMBER_BATCHED.reset(token)


@contextlib.contextmanager
def forward_only():
  """Tells the layers traced inside that nothing differentiates them (for 'auto': the ISNAS
  scorer's random outputs)."""
  token = _FORWARD_ONLY.set(True)
  try:
    yield
  finally:
    _FORWARD_ONLY.reset(token)


def conv_path(impl: str, kernel: int, stride: int, dilation: int, height: int, width: int) -> str:
  """How a same-padded convolution of an HxW input runs: 'xla', 'gemm' or 'winograd'.

  'winograd' (see conv_winograd) applies to 3x3 stride-1 layers with an even output and falls
  back to 'xla' elsewhere; 'gemm' (see conv_gemm) applies everywhere. 'auto' picks, on CPU
  (fwd+bwd per layer on 2 cores, see benchmarks/README.md):
  - Winograd for 3x3 stride-1 layers of at least 128x128 pixels (132->128 at 256 px: 0.52 s
    against 0.90 s for XLA's convolution; at 64x64 and below it does not gain); inside
    `forward_only`, of at least 32x32 (128->128 forward: 7.9 against 15 ms at 64 px, 2.5
    against 3.6 ms at 32 px, equal at 16 px);
  - a matrix product for 1x1 layers of at least 32x32 pixels (128->128 at 512 px: 0.43 s
    against 1.43 s);
  - matrix products for every other layer vmapped over cohort members: XLA turns a vmapped
    convolution into a grouped one, which its CPU backend runs slowly (4 skip networks at
    64 px: 8.5 vs 14 member-steps/s);
  - XLA's convolution otherwise (stride-2 layers: im2col loses to it at every size).
  Other backends use XLA's convolution.
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
  winograd = conv_winograd.supported(kernel, stride, dilation, height, width)
  if impl == "winograd":
    return "winograd" if winograd else "xla"
  if impl != "auto":
    return impl
  if jax.default_backend() != "cpu":
    return "xla"
  pixels = height * width
  min_pixels = WINOGRAD_MIN_PIXELS_FORWARD if _FORWARD_ONLY.get() else WINOGRAD_MIN_PIXELS
  if winograd and pixels >= min_pixels:
    return "winograd"
  if _MEMBER_BATCHED.get() or (kernel == 1 and stride == 1 and pixels >= GEMM_1X1_MIN_PIXELS):
    return "gemm"
  return "xla"


def shifted_depthwise(impl: str = "auto") -> bool:
  """Whether depthwise convolutions run as `depthwise_conv` (on CPU under 'auto' or any
  impl but 'xla'): XLA's CPU backend runs grouped convolutions slowly (7x7, 128 channels, five
  64x64 images: 131 ms against 9 ms forward, 444 against 196 ms with both gradients)."""
  return impl != "xla" and (impl != "auto" or jax.default_backend() == "cpu")


def depthwise_conv(x, w, padding: int = 0, dilation: int = 1):
  """A stride-1 depthwise convolution (w: (k, k, 1, C), one filter per channel) of x zero-padded
  by `padding`, as the sum of k * k shifted products (one fused loop)."""
  k, (h, wd) = w.shape[0], x.shape[1:3]
  if padding:
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  h, wd = h + 2 * padding - dilation * (k - 1), wd + 2 * padding - dilation * (k - 1)
  taps = [x[:, i * dilation:i * dilation + h, j * dilation:j * dilation + wd] * w[i, j, 0]
          for i in range(k) for j in range(k)]
  return functools.reduce(jnp.add, taps)


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
  that read only padding dropped (`crop_to_reach`); on CPU, depthwise ones as shifted products
  and inputs with a side of at most SMALL_SIDE pixels as one matrix product: XLA:CPU runs a
  kernel about as large as its input as a slow generic convolution (5x5, 128 -> 512 channels
  on four 4x4 inputs: 79 ms against 1.2 ms). Training keeps `Conv`'s paths (their programs
  compile faster)."""
  w = crop_to_reach(w, (0, 1), max(x.shape[1:3]), dilation)
  k = w.shape[0]
  p = dilation * (k // 2)
  if groups > 1 and groups == x.shape[-1] == w.shape[-1] and shifted_depthwise("auto"):
    return depthwise_conv(x, w, p, dilation)
  small = jax.default_backend() == "cpu" and min(x.shape[1:3]) <= SMALL_SIDE
  if groups == 1 and (k == 1 or small):  # 1x1 kernels: one matrix product everywhere
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return conv_gemm.conv2d_gemm(x, w, 1, dilation)
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

  Weights are HWIO; PyTorch OIHW weights convert with `w.transpose(2, 3, 1, 0)`. `conv_impl`
  picks XLA's convolution or matrix products; depthwise ones run as `depthwise_conv` where
  `shifted_depthwise` says so, other grouped ones as XLA's.
  """

  def __init__(self, in_ch: int, out_ch: int, kernel: int, *, stride: int = 1,
               pad: str = "reflection", bias: bool = True, groups: int = 1, dilation: int = 1,
               conv_impl: str = "auto", rngs: nnx.Rngs):
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

  def __call__(self, x):
    p, kernel = self.padding, self.kernel[...]
    if self.groups == 1:
      path = conv_path(self.conv_impl, kernel.shape[0], self.stride, self.dilation, x.shape[1],
                       x.shape[2])
    elif (self.groups == x.shape[-1] == kernel.shape[-1] and self.stride == 1
          and shifted_depthwise(self.conv_impl)):
      path = "depthwise"
    else:
      path = "xla"
    if path == "winograd":  # pads inside its tiles
      y = conv_winograd.conv3x3(x, kernel, self.pad)
    else:
      if p and (self.pad == "reflection" or path == "gemm"):
        x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)),
                    mode="reflect" if self.pad == "reflection" else "constant")
        p = 0
      if path == "depthwise":
        y = depthwise_conv(x, kernel, p, self.dilation)
      elif path == "gemm":
        y = conv_gemm.conv2d_gemm(x, kernel, self.stride, self.dilation)
      else:
        y = jax.lax.conv_general_dilated(
            x, kernel, (self.stride, self.stride), ((p, p), (p, p)),
            rhs_dilation=(self.dilation, self.dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.groups)
    return y if self.bias is None else y + self.bias[...]


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
