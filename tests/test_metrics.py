"""PSNR and NAS-DIP's SR protocol against the reference golden and hand-derived values."""

import os

import numpy as np
import pytest

from conftest import TESTDATA
from nasdip_jax.imaging import metrics

G = np.load(os.path.join(TESTDATA, "psnr.npz"))
hwc = lambda a: a.transpose(1, 2, 0)


def test_psnr_hand_value():
  a = np.zeros((8, 8, 3), np.float32)
  assert float(metrics.psnr(a, a + 0.1)) == pytest.approx(20.0, abs=1e-4)
  assert float(metrics.psnr(a, a + 0.01)) == pytest.approx(40.0, abs=1e-3)


@pytest.mark.parametrize("case", ["s5", "s6", "zb"])
def test_psnr_rgb_matches_reference(case):
  got = float(metrics.psnr(hwc(G[f"{case}_gt"]), hwc(G[f"{case}_out"])))
  assert got == pytest.approx(float(G[f"{case}_psnr_rgb"]), abs=1e-4)


@pytest.mark.parametrize("case", ["s5", "s6", "zb"])
def test_y_channel_matches_cv2(case):
  y = np.asarray(metrics.rgb_to_y(hwc(G[f"{case}_out"])))[..., 0]
  np.testing.assert_allclose(y, G[f"{case}_y_out"], atol=2e-6)


@pytest.mark.parametrize("case", ["s5", "s6", "zb"])
def test_sr_psnr_matches_reference(case):
  gt, out = hwc(G[f"{case}_gt"]), hwc(G[f"{case}_out"])
  assert float(metrics.psnr_sr(gt, out)) == pytest.approx(float(G[f"{case}_psnr_y_crop"]), abs=1e-4)
  r0, r1, c0, c1 = G[f"{case}_crop_box"]
  mask = np.asarray(metrics.sr_crop_mask(out))[..., 0]
  want = np.zeros_like(mask)
  want[r0:r1, c0:c1] = 1
  np.testing.assert_array_equal(mask, want)


def test_sr_crop_is_4_top_left_5_bottom_right():
  mask = np.asarray(metrics.sr_crop_mask(np.full((2, 20, 30, 3), 0.5, np.float32)))
  assert mask.shape == (2, 20, 30, 1)
  rows, cols = np.nonzero(mask[0, ..., 0])
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 20 - 6, 4, 30 - 6)


def test_gray_sr_psnr_uses_the_channel():
  gt = np.full((16, 16, 1), 0.5, np.float32)
  assert float(metrics.psnr_sr(gt, gt + 0.1)) == pytest.approx(20.0, abs=1e-4)


def _pair(seed, shape):
  rng = np.random.default_rng(seed)
  clean = np.sort(rng.random(shape), axis=1).astype(np.float32)  # some structure
  noisy = np.clip(clean + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)
  return clean, noisy


@pytest.mark.parametrize("seed,shape", [(0, (40, 37, 3)), (1, (32, 32, 1)), (2, (64, 48, 3))])
def test_ssim_matches_scikit_image(seed, shape):
  from skimage.metrics import structural_similarity  # pylint: disable=import-outside-toplevel
  clean, noisy = _pair(seed, shape)
  want = structural_similarity(clean, noisy, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=1.0, channel_axis=-1)
  assert float(metrics.ssim(clean, noisy)) == pytest.approx(want, abs=1e-5)
  assert float(metrics.ssim(clean, clean)) == pytest.approx(1.0, abs=1e-6)


def test_sr_ssim_is_y_ssim_of_the_psnr_crop():
  from skimage.metrics import structural_similarity  # pylint: disable=import-outside-toplevel
  clean, noisy = _pair(3, (48, 40, 3))
  y = lambda x: np.asarray(metrics.rgb_to_y(x))[4:-5, 4:-5, 0]
  want = structural_similarity(y(clean), y(noisy), gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=1.0)
  assert float(metrics.ssim_sr(clean, noisy)) == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("case", ["s5", "s6", "zb"])
@pytest.mark.parametrize("y_channel", [False, True])
def test_isnas_selection_psnrs_match_the_isnas_reference(case, y_channel):
  """ISNAS-DIP's selection ranks members by PSNR to the weighted average (on Y for RGB SR):
  with weights (1, 0) the average is the first output, so the second's PSNR to it is the
  reference's utils/funcs.py psnr(gt, out) (ycbcr=True: Y, no crop)."""
  from nasdip_jax.search import isnas  # pylint: disable=import-outside-toplevel
  outputs = np.stack([hwc(G[f"{case}_gt"]), hwc(G[f"{case}_out"])])
  _, psnrs, average = isnas.closest_to_average(outputs, [0.0, 1.0], y_channel)
  np.testing.assert_array_equal(average, outputs[0])
  want = G[f"{case}_isnas_psnr_y" if y_channel else f"{case}_isnas_psnr_rgb"]
  assert psnrs[1] == pytest.approx(float(want), abs=1e-4)
