"""The DIP skip network against the reference golden forward, parameter counts and init."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import TESTDATA
from nasdip_jax.nets import registry
from nasdip_jax.nets import skip
from reference_weights import load_skip_state_dict, reference_grad_name_map, state_leaf

GOLDEN = np.load(os.path.join(TESTDATA, "dip_skip_forward.npz"))
COUNTS = json.load(open(os.path.join(TESTDATA, "param_counts.json")))
nhwc = lambda a: a.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("out_ch,name", [(3, "dip_skip_32_3"), (1, "dip_skip_32_1")])
def test_param_count_matches_reference(out_ch, name):
  abstract = nnx.eval_shape(lambda: skip.SkipNet(32, out_ch, rngs=nnx.Rngs(0)))
  assert registry.num_params(abstract) == COUNTS["dip"][name]["params_all"]


def test_param_count_hand_formula_for_custom_widths():
  # in 2, 2 levels of 8 (down, up), skip 2, 1x1 up: count each conv (w + b) and BN (2 per ch).
  net = skip.SkipNet(2, 1, channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2),
                     rngs=nnx.Rngs(0))
  conv = lambda i, o, k: i * o * k * k + o
  bn = lambda c: 2 * c
  lv0 = (conv(2, 2, 1) + bn(2) + conv(2, 8, 3) + bn(8) + conv(8, 8, 3) + bn(8) + bn(10)
         + conv(10, 8, 3) + bn(8) + conv(8, 8, 1) + bn(8))
  lv1 = (conv(8, 2, 1) + bn(2) + conv(8, 8, 3) + bn(8) + conv(8, 8, 3) + bn(8) + bn(10)
         + conv(10, 8, 3) + bn(8) + conv(8, 8, 1) + bn(8))
  assert registry.num_params(net) == lv0 + lv1 + conv(8, 1, 1)


# XLA's convolutions here; the CPU kernels (gemm, Winograd) equal them layer by layer, in value
# and both gradients (tests/test_conv_impls.py).
@pytest.fixture(scope="module")
def golden_net():
  net = skip.SkipNet(conv_impl="xla", rngs=nnx.Rngs(0))
  assert load_skip_state_dict(net, GOLDEN) == len(GOLDEN["param_names"])
  return net


@pytest.fixture(scope="module")
def golden_forward(golden_net):
  graphdef, params = nnx.split(golden_net, nnx.Param)
  z, target = nhwc(GOLDEN["z"]), nhwc(GOLDEN["target"])

  def loss_fn(p):
    out = nnx.merge(graphdef, p)(z)
    return jnp.mean(jnp.square(out - target)), out

  (loss, out), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
  return float(loss), np.asarray(out), grads


def test_forward_matches_reference(golden_forward):
  loss, out, _ = golden_forward
  np.testing.assert_allclose(out, nhwc(GOLDEN["output"]), rtol=0, atol=5e-5)
  assert loss == pytest.approx(float(GOLDEN["loss"]), rel=1e-5)


# Per-tensor gradient tolerance: the golden README's 1e-2, except for the gradients that
# BatchNorm backward's cancellation leaves tiny (norm < 1e-4: level 2's skip BN biases), whose
# float32 rounding depends on the machine's convolution kernels. The smallest (norm 4e-5) is off
# by 1.0% on a 2-core AVX2 EPYC (jax 0.10.2, YNNPACK), under 1% on AVX-512; every other tensor by
# at most 0.8%.
GRAD_REL_TOL = 1e-2
TINY_GRAD_NORM = 1e-4
TINY_GRAD_REL_TOL = 1.5e-2


def test_gradients_match_reference(golden_forward, golden_net):
  _, _, grads = golden_forward
  names = reference_grad_name_map(golden_net)
  total = math.sqrt(sum(float(np.sum(np.asarray(g, np.float64) ** 2))
                        for g in jax.tree.leaves(grads)))
  assert total == pytest.approx(float(GOLDEN["grad_norm"]), rel=2e-3)
  for i, name in enumerate(GOLDEN["param_names"]):
    g = state_leaf(grads, names[name])
    if g.ndim == 4:
      g = g.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    exact = GOLDEN["grad_norm_per_param_float64"][i]
    if exact < 1e-6:  # (near) zero in exact arithmetic, e.g. biases feeding a BatchNorm
      assert abs(np.linalg.norm(g) - exact) < 1e-6, name
      continue
    assert np.linalg.norm(g) == pytest.approx(GOLDEN["grad_norm_per_param"][i], rel=1e-2), name
    if f"grad/{name}" in GOLDEN:
      ref = GOLDEN[f"grad/{name}"]
      tol = TINY_GRAD_REL_TOL if np.linalg.norm(ref) < TINY_GRAD_NORM else GRAD_REL_TOL
      assert np.linalg.norm(g - ref) <= tol * np.linalg.norm(ref), name


def test_pytorch_default_init():
  net = skip.SkipNet(rngs=nnx.Rngs(3))
  w = np.asarray(net.levels[0].up1.conv.kernel[...])  # 3x3, 132 -> 128: fan_in 1188
  bound = 1 / math.sqrt(132 * 9)
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
  assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.02)
  b = np.asarray(net.levels[0].up1.conv.bias[...])
  assert np.abs(b).max() <= bound
  np.testing.assert_array_equal(np.asarray(net.levels[0].bn_cat.scale[...]), 1.0)
  np.testing.assert_array_equal(np.asarray(net.levels[0].bn_cat.bias[...]), 0.0)


def test_same_seed_same_init_and_different_seed_differs():
  a = nnx.state(skip.SkipNet(4, 1, channels_down=(8,), channels_up=(8,), channels_skip=(2,),
                             rngs=nnx.Rngs(5)), nnx.Param)
  b = nnx.state(skip.SkipNet(4, 1, channels_down=(8,), channels_up=(8,), channels_skip=(2,),
                             rngs=nnx.Rngs(5)), nnx.Param)
  c = nnx.state(skip.SkipNet(4, 1, channels_down=(8,), channels_up=(8,), channels_skip=(2,),
                             rngs=nnx.Rngs(6)), nnx.Param)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(jax.tree.leaves(a)[0], jax.tree.leaves(c)[0])


def test_odd_sizes_crop_like_the_reference_concat():
  net = skip.SkipNet(4, 3, channels_down=(4, 4), channels_up=(4, 4), channels_skip=(2, 2),
                     upsample=("nearest", "bicubic"), rngs=nnx.Rngs(0))
  out = net(jnp.full((1, 10, 14, 4), 0.05))  # 10 -> 5 -> 3 -> up 6 (crop to 5) -> up 10
  assert out.shape == (1, 10, 14, 3)
  assert np.all((np.asarray(out) > 0) & (np.asarray(out) < 1))


def test_no_skip_channels_and_bad_arguments():
  net = skip.SkipNet(4, 1, channels_down=(4, 4), channels_up=(4, 4), channels_skip=(0, 0),
                     need1x1_up=False, rngs=nnx.Rngs(0))
  assert net.levels[0].skip is None and net.levels[0].up2 is None
  assert net(jnp.zeros((1, 8, 8, 4))).shape == (1, 8, 8, 1)
  with pytest.raises(ValueError, match="same length"):
    skip.SkipNet(4, 1, channels_down=(4, 4), channels_up=(4,), channels_skip=(0, 0),
                 rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="unknown upsampling mode"):
    skip.SkipNet(4, 1, upsample="area", rngs=nnx.Rngs(0))
