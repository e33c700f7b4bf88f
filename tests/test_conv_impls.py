"""The matrix-product and Winograd convolutions against XLA's: values and both gradients; and
which one `conv_impl="auto"` picks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasdip_jax.nets import cpu_conv
from nasdip_jax.nets import layers
from nasdip_jax.nets.cpu_conv import gemm as conv_gemm
from nasdip_jax.nets.cpu_conv import shifted as conv_shifted
from nasdip_jax.nets.cpu_conv import winograd as conv_winograd


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


@pytest.mark.parametrize("h,w,c,k,padding,dilation", [
    (9, 8, 3, 3, 1, 1), (10, 11, 4, 7, 3, 1), (12, 12, 2, 5, 4, 2), (8, 9, 5, 1, 0, 1),
    (11, 10, 3, 3, 0, 3)])
def test_depthwise_matches_xla_grouped_convolution(h, w, c, k, padding, dilation):
  x = jax.random.normal(jax.random.key(0), (2, h, w, c))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 1, c))
  ref = lambda x, kernel: jax.lax.conv_general_dilated(
      x, kernel, (1, 1), ((padding, padding),) * 2, rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c, precision="highest")
  ours = lambda x, kernel: conv_shifted.depthwise_conv(x, kernel, padding, dilation)
  y_ref, y = ref(x, kernel), ours(x, kernel)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, atol=1e-4)
  g = jax.random.normal(jax.random.key(2), y.shape)
  grads = lambda f: jax.grad(lambda a, b: jnp.sum(f(a, b) * g), (0, 1))(x, kernel)
  for got, want in zip(grads(ours), grads(ref)):
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_depthwise_layers_take_the_shifted_path_on_cpu_unless_xla_is_asked_for():
  depthwise = lambda impl, stride=1: cpu_conv.select(impl, 3, stride, 1, 8, 8, depthwise=True)
  assert depthwise("auto") == ("shifted" if jax.default_backend() == "cpu" else "xla")
  assert depthwise("gemm") == "shifted" and depthwise("xla") == depthwise("gemm", 2) == "xla"
  assert cpu_conv.select("gemm", 3, 1, 1, 8, 8, grouped=True) == "xla"  # groups < channels
  x = jax.random.normal(jax.random.key(0), (1, 6, 7, 4))
  convs = [layers.Conv(4, 4, 3, pad=pad, groups=4, dilation=2, conv_impl=impl, rngs=nnx.Rngs(0))
           for impl in ("auto", "xla") for pad in ("reflection", "zero")]
  for shifted, xla in zip(convs[:2], convs[2:]):
    np.testing.assert_allclose(shifted(x), xla(x), atol=1e-5)


@pytest.mark.parametrize("h,w,k,dilation,groups", [
    (2, 2, 5, 1, 1), (2, 3, 7, 1, 1), (4, 4, 7, 1, 1), (4, 5, 5, 2, 1), (1, 1, 3, 1, 1),
    (3, 3, 7, 1, 6), (9, 8, 5, 2, 6), (9, 10, 3, 1, 1), (6, 6, 1, 1, 1)])
def test_same_conv_matches_xla_with_the_whole_kernel(h, w, k, dilation, groups):
  """Taps that read only padding are dropped, small inputs (on CPU) run as matrix products,
  depthwise ones as shifted products: the values of XLA's zero-padded convolution (the scorer
  takes no gradients)."""
  x = jax.random.normal(jax.random.key(0), (2, h, w, 6))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 6 // groups, 6))
  p = dilation * (k // 2)
  ref = lambda x, kernel: jax.lax.conv_general_dilated(
      x, kernel, (1, 1), ((p, p), (p, p)), rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
      precision="highest")
  y_ref, y = ref(x, kernel), layers.same_conv(x, kernel, dilation, groups)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, atol=1e-4)


@pytest.mark.parametrize("h,w,k", [(3, 4, 7), (5, 3, 5), (4, 4, 3), (2, 3, 1), (1, 1, 7)])
def test_nearest_up_conv_is_the_convolution_of_the_upsampled_input(h, w, k):
  """Per output phase at the input's resolution: XLA's zero-padded convolution of the
  nearest-upsampled input (odd and tiny sizes: taps reading padding on both sides)."""
  x = jax.random.normal(jax.random.key(0), (2, h, w, 3))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 3, 4))
  up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  p = k // 2
  want = jax.lax.conv_general_dilated(up, kernel, (1, 1), ((p, p), (p, p)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision="highest")
  got = layers.nearest_up_conv(x, kernel)
  assert got.shape == want.shape == (2, 2 * h, 2 * w, 4)
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_crop_to_reach_keeps_the_taps_that_can_read_the_input():
  w = jnp.arange(7 * 7, dtype=jnp.float32).reshape(7, 7, 1, 1)
  assert layers.crop_to_reach(w, (0, 1), 2).shape[:2] == (3, 3)
  np.testing.assert_array_equal(layers.crop_to_reach(w, (0, 1), 2)[..., 0, 0], w[2:5, 2:5, 0, 0])
  assert layers.crop_to_reach(w, (0, 1), 4).shape[:2] == (7, 7)
  assert layers.crop_to_reach(w, (0, 1), 4, dilation=2).shape[:2] == (3, 3)
  assert layers.crop_to_reach(w, (0, 1), 1).shape[:2] == (1, 1)


def _xla_same(x, kernel, mode):
  p = kernel.shape[0] // 2
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode=mode)
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision="highest")


@pytest.mark.parametrize("h,w,ci,co,pad", [
    (2, 2, 3, 2, "reflection"), (8, 6, 5, 4, "reflection"), (6, 10, 4, 3, "zero"),
    (16, 16, 7, 9, "reflection")])
def test_winograd_matches_xla_convolution(h, w, ci, co, pad):
  x = jax.random.normal(jax.random.key(0), (2, h, w, ci))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, ci, co))
  ref = lambda x, kernel: _xla_same(x, kernel, "reflect" if pad == "reflection" else "constant")
  ours = lambda x, kernel: conv_winograd.conv3x3(x, kernel, pad)
  y_ref, y = ref(x, kernel), ours(x, kernel)
  assert y.shape == y_ref.shape
  # The edges matter: the padding is built into the tiles, not applied to the input.
  np.testing.assert_allclose(y, y_ref, atol=1e-4)
  g = jax.random.normal(jax.random.key(2), y.shape)
  grads = lambda f: jax.grad(lambda a, b: jnp.sum(f(a, b) * g), (0, 1))(x, kernel)
  for got, want in zip(grads(ours), grads(ref)):
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_winograd_rejects_what_it_cannot_compute():
  x, kernel = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(ValueError, match="even input"):
    conv_winograd.conv3x3(x[:, :7], kernel)
  with pytest.raises(ValueError, match="3x3 kernel"):
    conv_winograd.conv3x3(x, jnp.zeros((5, 5, 2, 2)))
  with pytest.raises(ValueError, match="pad"):
    conv_winograd.conv3x3(x, kernel, "circular")


def test_auto_paths_on_cpu():
  cpu = jax.default_backend() == "cpu"
  path = lambda k, s, px, impl="auto": cpu_conv.select(impl, k, s, 1, px, px)
  assert path(3, 1, 128) == ("winograd" if cpu else "xla")
  assert path(3, 1, 64) == "xla" and path(3, 2, 512) == "xla"
  assert path(1, 1, 32) == ("gemm" if cpu else "xla") and path(1, 1, 16) == "xla"
  batched = lambda k, s, px: cpu_conv.select("auto", k, s, 1, px, px, member_batched=True)
  assert batched(3, 2, 8) == ("gemm" if cpu else "xla")
  assert batched(3, 1, 256) == ("winograd" if cpu else "xla")
  # no backward pass to pay for: Winograd from 32x32
  forward = lambda k, s, px, impl="auto": cpu_conv.select(impl, k, s, 1, px, px,
                                                           forward_only=True)
  assert forward(3, 1, 32) == ("winograd" if cpu else "xla") and forward(3, 1, 16) == "xla"
  assert forward(3, 2, 64) == "xla" and forward(3, 1, 64, "xla") == "xla"
  assert path(3, 1, 32) == "xla"
  assert path(3, 1, 8, "gemm") == "gemm" and path(3, 1, 512, "xla") == "xla"
  assert path(3, 1, 8, "winograd") == "winograd" and path(3, 2, 8, "winograd") == "xla"
  assert cpu_conv.select("winograd", 3, 1, 1, 7, 8) == "xla"
  with pytest.raises(ValueError, match="conv_impl"):
    path(3, 1, 8, "fft")


def test_specialise_tells_every_conv_how_it_runs(monkeypatch):
  """A cohort's vmapped members: every ungrouped layer of 16x16 px or less runs as matrix
  products on CPU (XLA's convolution otherwise), through the module's graph definition."""
  from nasdip_jax.nets import skip  # pylint: disable=import-outside-toplevel
  calls = []
  real = conv_gemm.conv2d_gemm
  monkeypatch.setattr(conv_gemm, "conv2d_gemm", lambda *a: calls.append(1) or real(*a))
  net = skip.SkipNet(4, 3, channels_down=(8, 8), channels_up=(8, 8), channels_skip=(4, 4),
                     rngs=nnx.Rngs(0))
  z = jnp.zeros((1, 16, 16, 4))
  jax.eval_shape(net, z)
  assert not calls  # 3x3 layers under 128 px and 1x1 layers under 32 px: XLA's
  layers.specialise(net, member_batched=True)
  graphdef, state = nnx.split(net)
  jax.eval_shape(lambda s: nnx.merge(graphdef, s)(z), state)
  convs = [m for _, m in nnx.iter_modules(net) if isinstance(m, layers.Conv)]
  assert len(calls) == (len(convs) if jax.default_backend() == "cpu" else 0)
