"""The matrix-product convolution against XLA's convolution: values and both gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nasdip_jax.nets import conv_gemm
from nasdip_jax.nets import layers


@pytest.mark.parametrize("h,w,ci,co,k,stride,dilation", [
    (9, 8, 3, 5, 3, 1, 1), (10, 11, 4, 6, 3, 2, 1), (12, 12, 2, 3, 5, 1, 2),
    (9, 9, 3, 4, 1, 1, 1), (8, 8, 3, 2, 3, 2, 2), (13, 12, 2, 2, 7, 1, 1)])
def test_matches_xla_convolution(h, w, ci, co, k, stride, dilation):
  x = jax.random.normal(jax.random.key(0), (2, h, w, ci))
  kernel = jax.random.normal(jax.random.key(1), (k, k, ci, co))
  ref = lambda x, kernel: jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), "VALID", rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
  ours = lambda x, kernel: conv_gemm.conv2d_gemm(x, kernel, stride, dilation)
  y_ref, y = ref(x, kernel), ours(x, kernel)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, atol=1e-4)
  g = jax.random.normal(jax.random.key(2), y.shape)
  grads = lambda f: jax.grad(lambda a, b: jnp.sum(f(a, b) * g), (0, 1))(x, kernel)
  for got, want in zip(grads(ours), grads(ref)):
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_auto_picks_gemm_only_for_large_cpu_layers():
  assert layers.use_gemm("auto", 128, 128) == (jax.default_backend() == "cpu")
  assert not layers.use_gemm("auto", 64, 64) and not layers.use_gemm("auto", 512, 512)
  with layers.image_size(512, 512):  # a 256-px layer of a 512-px network
    assert not layers.use_gemm("auto", 256, 256)
  with layers.image_size(256, 256):
    assert layers.use_gemm("auto", 256, 256) == (jax.default_backend() == "cpu")
  assert layers.use_gemm("gemm", 8, 8) and not layers.use_gemm("xla", 512, 512)
  with pytest.raises(ValueError, match="conv_impl"):
    layers.use_gemm("fft", 8, 8)
