"""Layers with PyTorch semantics (NHWC): default init, reflection padding, batch-stat BatchNorm."""

import contextlib
import contextvars
import math

import jax
import jax.numpy as jnp
from flax import nnx

from nasdip_jax.nets import conv_gemm

BN_EPS = 1e-5
LEAKY_SLOPE = 0.2
CONV_IMPLS = ("auto", "xla", "gemm")


GEMM_PIXELS = (128 * 128, 256 * 256)
_IMAGE_PIXELS = contextvars.ContextVar("image_pixels", default=0)
_MEMBER_BATCHED = contextvars.ContextVar("member_batched", default=False)


@contextlib.contextmanager
def image_size(height: int, width: int):
  """Tells the layers traced inside which network input size they serve (for 'auto')."""
  token = _IMAGE_PIXELS.set(height * width)
  try:
    yield
  finally:
    _IMAGE_PIXELS.reset(token)


@contextlib.contextmanager
def member_batched():
  """Tells the layers traced inside that they run vmapped over cohort members (for 'auto')."""
  token = _MEMBER_BATCHED.set(True)
  try:
    yield
  finally:
    _MEMBER_BATCHED.reset(token)


def use_gemm(impl: str, height: int, width: int) -> bool:
  """Whether a layer runs as matrix products (see conv_gemm) or XLA's convolution.

  'auto' picks matrix products on CPU for layers of 128x128 to 256x256 pixels in networks whose
  input is at most 256x256, where they were faster (DIP step at 256 px: 0.64 vs 0.54 steps/s);
  smaller layers gain nothing, and in larger networks the im2col buffers' memory traffic loses
  (512 px: 0.093 vs 0.120 steps/s, with more memory). Vmapped over cohort members, every layer
  on CPU uses matrix products: XLA turns a vmapped convolution into a grouped one, which its CPU
  backend runs slowly (4 skip networks at 64 px: 8.5 vs 14 member-steps/s). Other backends use
  XLA's convolution.
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
  if impl == "auto":
    lo, hi = GEMM_PIXELS
    return jax.default_backend() == "cpu" and (
        _MEMBER_BATCHED.get() or (lo <= height * width <= hi and _IMAGE_PIXELS.get() <= hi))
  return impl == "gemm"


def torch_uniform(key, shape, fan_in: int):
  """PyTorch's default Conv2d init for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Conv(nnx.Module):
  """Conv2d: 'reflection' pads with ReflectionPad2d((k-1)//2), 'zero' pads inside the conv.

  Weights are HWIO; PyTorch OIHW weights convert with `w.transpose(2, 3, 1, 0)`. `conv_impl`
  picks XLA's convolution or matrix products (grouped convolutions always use XLA's).
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
    p = self.padding
    gemm = self.groups == 1 and use_gemm(self.conv_impl, x.shape[1], x.shape[2])
    if self.pad == "reflection" and p:
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
      padding = "VALID"
    elif gemm and p:
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
      padding = "VALID"
    else:
      padding = ((p, p), (p, p))
    if gemm:
      y = conv_gemm.conv2d_gemm(x, self.kernel[...], self.stride, self.dilation)
      return y if self.bias is None else y + self.bias[...]
    y = jax.lax.conv_general_dilated(
        x, self.kernel[...], (self.stride, self.stride), padding,
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
