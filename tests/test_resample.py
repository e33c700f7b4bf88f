"""Resampling against the reference goldens and hand-derived values."""

import os

import numpy as np
import pytest
from PIL import Image

from conftest import TESTDATA
from nasdip_jax.imaging import resample

LANCZOS = np.load(os.path.join(TESTDATA, "lanczos_downsampler.npz"))
PRIMS = np.load(os.path.join(TESTDATA, "upsample_primitives.npz"))
nhwc = lambda a: a.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_lanczos2_kernel_matches_reference(factor):
  k = resample.lanczos2_kernel(factor)
  np.testing.assert_allclose(k, LANCZOS[f"kernel_f{factor}"], rtol=0, atol=1e-12)
  assert k.shape == (4 * factor, 4 * factor)
  assert abs(k.sum() - 1.0) < 1e-12
  np.testing.assert_array_equal(k, k.T)


def test_lanczos2_x4_taps_hand_values():
  # DIP's 1-D x4 kernel (first half), from the formula in the reference notes.
  k1 = resample.lanczos2_kernel(4).sum(axis=0)
  np.testing.assert_allclose(k1[:8], [-0.001065, -0.009752, -0.020384, -0.014878, 0.024594,
                                      0.098658, 0.183115, 0.239711], atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_lanczos2_downsample_matches_reference(factor):
  y = resample.lanczos2_downsample(nhwc(LANCZOS["x"]), factor)
  np.testing.assert_allclose(np.asarray(y), nhwc(LANCZOS[f"y_f{factor}"]), rtol=0, atol=1e-6)


def test_lanczos2_downsample_preserves_constants():
  x = np.full((1, 32, 32, 2), 0.37, np.float32)
  np.testing.assert_allclose(np.asarray(resample.lanczos2_downsample(x, 4)), 0.37, atol=1e-6)


@pytest.mark.parametrize("mode,atol", [("bilinear", 1e-6), ("bicubic", 1e-6), ("nearest", 0.0)])
def test_upsample_matches_pytorch(mode, atol):
  y = resample.upsample2x(nhwc(PRIMS["x"]), mode)
  np.testing.assert_allclose(np.asarray(y), nhwc(PRIMS[mode]), rtol=0, atol=atol)


def test_bicubic_taps_are_keys_a_minus_075():
  def w(d, a=-0.75):
    d = abs(d)
    return (a + 2) * d**3 - (a + 3) * d**2 + 1 if d <= 1 else a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
  even = [w(d) for d in (1.75, 0.75, 0.25, 1.25)]
  np.testing.assert_allclose(resample.UPSAMPLE_TAPS["bicubic"][0], even, atol=1e-15)


def test_upsample_unknown_mode():
  with pytest.raises(ValueError, match="unknown upsampling mode"):
    resample.upsample2x(np.zeros((1, 4, 4, 1), np.float32), "area")


def test_pil_resize_is_pillow_lanczos():
  img = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
  out = resample.pil_resize(img, (12, 8))
  want = np.asarray(Image.fromarray(img).resize((12, 8), Image.Resampling.LANCZOS))
  np.testing.assert_array_equal(out, want)
  gray = resample.pil_resize(img[..., :1], (12, 8))
  assert gray.shape == (8, 12, 1)
