"""Layers with PyTorch semantics (NHWC): default init, reflection padding, batch-stat BatchNorm."""

import math

import jax
import jax.numpy as jnp
from flax import nnx

BN_EPS = 1e-5
LEAKY_SLOPE = 0.2


def torch_uniform(key, shape, fan_in: int):
  """PyTorch's default Conv2d init for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Conv(nnx.Module):
  """Conv2d: 'reflection' pads with ReflectionPad2d((k-1)//2), 'zero' pads inside the conv.

  Weights are HWIO; PyTorch OIHW weights convert with `w.transpose(2, 3, 1, 0)`.
  """

  def __init__(self, in_ch: int, out_ch: int, kernel: int, *, stride: int = 1,
               pad: str = "reflection", bias: bool = True, groups: int = 1, dilation: int = 1,
               rngs: nnx.Rngs):
    if pad not in ("reflection", "zero"):
      raise ValueError(f"pad must be 'reflection' or 'zero', got {pad!r}")
    fan_in = in_ch // groups * kernel * kernel
    self.kernel = nnx.Param(torch_uniform(rngs.params(), (kernel, kernel, in_ch // groups, out_ch),
                                          fan_in))
    self.bias = nnx.Param(torch_uniform(rngs.params(), (out_ch,), fan_in)) if bias else None
    self.stride, self.pad, self.groups, self.dilation = stride, pad, groups, dilation
    self.padding = dilation * (kernel - 1) // 2

  def __call__(self, x):
    p = self.padding
    if self.pad == "reflection" and p:
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
      padding = "VALID"
    else:
      padding = ((p, p), (p, p))
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

  def __init__(self, in_ch, out_ch, kernel, *, stride=1, pad="reflection", rngs):
    self.conv = Conv(in_ch, out_ch, kernel, stride=stride, pad=pad, rngs=rngs)
    self.bn = BatchNorm(out_ch)

  def __call__(self, x):
    return leaky_relu(self.bn(self.conv(x)))
