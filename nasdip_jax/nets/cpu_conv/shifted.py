"""Depthwise convolution as the sum of k * k shifted products (one fused loop on CPU)."""

import functools

import jax.numpy as jnp


def depthwise_conv(x, w, padding: int = 0, dilation: int = 1):
  """A stride-1 depthwise convolution (w: (k, k, 1, C), one filter per channel) of x zero-padded
  by `padding`."""
  k, (h, wd) = w.shape[0], x.shape[1:3]
  if padding:
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  h, wd = h + 2 * padding - dilation * (k - 1), wd + 2 * padding - dilation * (k - 1)
  taps = [x[:, i * dilation:i * dilation + h, j * dilation:j * dilation + wd] * w[i, j, 0]
          for i in range(k) for j in range(k)]
  return functools.reduce(jnp.add, taps)
