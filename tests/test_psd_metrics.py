"""ISNAS-DIP's PSD metrics against the reference's values and intermediates
(tests/testdata/isnas_metrics.npz, from ISNAS-DIP utils/funcs.py), plus hand-derived checks."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from conftest import TESTDATA
from nasdip_jax.search import psd_metrics as pm

G = np.load(os.path.join(TESTDATA, "isnas_metrics.npz"))
NAMES = list(G["similarity_metric_names"]) + list(G["lowpass_metric_names"])
# nodc + db on grayscale: the DC bin is float32 round-off (~1e-16), so its 10 ln (about -350)
# is noise. It moves `nodc psd db mse` little (one bin of H * W); it sets the histogram range of
# `nodc psd db hist emd`, which is then noise too (the golden README: compare loosely or not at
# all). Both are checked exactly on RGB (pair b), where the per-channel DC bins survive.
ILL_CONDITIONED = {"nodc psd db mse", "nodc psd db hist emd"}


def _nhwc(chw):
  return np.moveaxis(chw, -3, -1)[None] if chw.ndim == 3 else np.moveaxis(chw, -3, -1)


def _pair(p):
  return _nhwc(G[f"{p}_image"]), _nhwc(G[f"{p}_output"])


def _reference(p, name):
  if name in pm.SIMILARITY_METRICS:
    return G[f"{p}_similarity"][list(G["similarity_metric_names"]).index(name)]
  return G[f"{p}_lowpass_output"][list(G["lowpass_metric_names"]).index(name)]


def test_metric_names_are_the_reference_lists():
  assert tuple(G["similarity_metric_names"]) == pm.SIMILARITY_METRICS
  assert tuple(G["lowpass_metric_names"]) == pm.LOWPASS_METRICS


@pytest.mark.parametrize("p", ["a", "b", "c"])
def test_every_metric_matches_the_reference_in_float64(p):
  image, output = _pair(p)
  with jax.enable_x64(True):
    for name in NAMES:
      got = float(pm.metric(name, jnp.asarray(image), jnp.asarray(output))[0])
      want = float(_reference(p, name))
      if name == "nodc psd db hist emd" and p != "b":
        assert np.isfinite(got) and 0 < got < 10 * want, name
      elif name in ILL_CONDITIONED and p != "b":
        assert np.isfinite(got) and got == pytest.approx(want, rel=1e-2), name
      else:  # nodc subtracts a float32 mean, rounded differently from numpy's (README: 1e-8)
        assert got == pytest.approx(want, rel=5e-8 if "nodc" in name else 1e-9), name


@pytest.mark.parametrize("p", ["a", "b"])
def test_every_metric_in_float32_within_the_complex64_tolerance(p):
  image, output = _pair(p)
  for name in NAMES:
    got = float(pm.metric(name, jnp.asarray(image), jnp.asarray(output))[0])
    want = float(_reference(p, name))
    if name == "nodc psd db hist emd" and p != "b":
      assert np.isfinite(got), name
      continue
    rel = 2e-2 if name in ILL_CONDITIONED or "db hist" in name else 2e-4
    assert got == pytest.approx(want, rel=rel), name


def test_intermediates_of_pair_a():
  image, output = _pair("a")
  with jax.enable_x64(True):
    p_img, p_out = pm.psd(jnp.asarray(image)), pm.psd(jnp.asarray(output))
    np.testing.assert_allclose(p_img[0, ..., 0], G["a_psd_image"][0], rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(p_out[0, ..., 0], G["a_psd_output"][0, 0], rtol=1e-12, atol=1e-20)
    np.testing.assert_array_equal(pm.strip_mask(64, 64), G["a_strip_mask"][0])
    np.testing.assert_allclose(pm.strip(pm.db(p_img))[0], G["a_strip_db_image"], atol=1e-9)
    np.testing.assert_allclose(pm.strip(pm.db(p_out)), G["a_strip_db_output"], atol=1e-9)
    strip_img, strip_out = pm.strip(p_img), pm.strip(p_out)
    np.testing.assert_allclose(strip_img[0], G["a_strip_psd_image"], rtol=1e-12)
    heights, edges = pm.histogram(strip_img[0])
    np.testing.assert_allclose(heights, G["a_hist_image"], rtol=1e-12)
    np.testing.assert_allclose(edges, G["a_hist_edges_image"], rtol=1e-12)
    np.testing.assert_allclose(pm.hist(strip_out), G["a_hist_output"], rtol=1e-12)
    np.testing.assert_allclose(pm.disc_diameters(), G["a_disc_diameters"], rtol=1e-15)
    counts = [pm.circle_mask(64, 64, d).sum() for d in pm.disc_diameters()]
    np.testing.assert_array_equal(counts, G["a_disc_pixel_counts"])
    np.testing.assert_allclose(pm.disc_energies(p_out[..., 0])[0], G["a_disc_energies_output"],
                               rtol=1e-12)
    np.testing.assert_allclose(float(jnp.sum(p_out)), G["a_total_energy_output"], rtol=1e-12)


def test_histogram_equals_numpy_including_edge_values():
  rng = np.random.default_rng(0)
  v = np.concatenate([rng.random(500), [0.0, 1.0, 0.5, 0.25]])
  v = np.round(v * 20) / 20  # many values exactly on bin edges
  with jax.enable_x64(True):
    heights, edges = pm.histogram(jnp.asarray(v))
  want_h, want_e = np.histogram(v, bins=100, density=True)
  np.testing.assert_allclose(heights, want_h, rtol=1e-12)
  np.testing.assert_allclose(edges, want_e, rtol=1e-15)
  const, _ = pm.histogram(jnp.full(7, 3.0))  # numpy widens a zero range to +-0.5
  np.testing.assert_allclose(const, np.histogram(np.full(7, 3.0), bins=100, density=True)[0],
                             rtol=1e-5)


def test_emd_is_scipy_wasserstein_of_heights_and_corrected_variant_of_bins():
  rng = np.random.default_rng(1)
  u, v = rng.random(100), rng.random(100) * 2
  with jax.enable_x64(True):
    got = float(pm.wasserstein_samples(jnp.asarray(u), jnp.asarray(v)))
    assert got == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12)
    # on shared bins: W1 between the two histograms as distributions over bin centres
    p, q = rng.random(100), rng.random(100)
    centres = np.arange(100) * 0.5
    want = scipy.stats.wasserstein_distance(centres, centres, p, q)
    got = float(pm.wasserstein_bins(jnp.asarray(p), jnp.asarray(q), 0.5))
    assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("name", pm.CORRECTED_METRICS)
def test_corrected_variants_are_the_w1_distance_of_the_values_even_out_of_the_images_range(name):
  # an untrained network's output is nearly flat: its PSD lies (almost) wholly below the image's
  # (binned on the image's own edges, those values were dropped: the strip metric was NaN)
  image, _ = _pair("a")
  rng = np.random.default_rng(3)
  flat = (0.5 + 1e-3 * rng.standard_normal((2,) + image.shape[1:])).astype(np.float32)
  with jax.enable_x64(True):
    got = np.asarray(pm.metric(name, jnp.asarray(image), jnp.asarray(flat)))
    fns = {"psd": pm.psd, "db": pm.db, "strip": pm.strip}
    chain = lambda x: functools.reduce(lambda a, t: fns[t](a), name.split()[:-2], x)
    u, vs = (np.asarray(chain(jnp.asarray(a))).reshape(len(a), -1) for a in (image, flat))
    u = u[0]
  assert np.mean(vs < u.min()) > 0.99  # (the flat output's DC bin is the exception in dB)
  for g, v in zip(got, vs):
    bin_width = (max(u.max(), v.max()) - min(u.min(), v.min())) / pm.BINS
    assert g == pytest.approx(scipy.stats.wasserstein_distance(u, v), abs=bin_width), name


def test_batched_candidates_equal_one_at_a_time_and_psd_obeys_parseval():
  image, output = _pair("b")
  rng = np.random.default_rng(2)
  outs = np.concatenate([output, rng.random((2,) + output.shape[1:]).astype(np.float32)])
  for name in pm.SIMILARITY_METRICS + pm.LOWPASS_METRICS + pm.CORRECTED_METRICS:
    batch = np.asarray(pm.metric(name, image, outs))
    single = [float(pm.metric(name, image, outs[i:i + 1])[0]) for i in range(3)]
    np.testing.assert_allclose(batch, single, rtol=1e-5, err_msg=name)
  p = pm.psd(jnp.asarray(outs))
  np.testing.assert_allclose(jnp.sum(p, axis=(1, 2)), np.mean(outs ** 2, axis=(1, 2)), rtol=1e-5)
  np.testing.assert_allclose(p[:, 32, 32], np.mean(outs, axis=(1, 2)) ** 2, rtol=1e-5)


def test_identical_operands_score_zero_and_random_baseline_is_about_two():
  image, _ = _pair("a")
  for name in pm.SIMILARITY_METRICS[:2] + pm.CORRECTED_METRICS:
    assert float(pm.metric(name, image, image)[0]) == pytest.approx(0.0, abs=1e-6), name
  r = pm.metric(pm.RANDOM_METRIC, image, np.zeros((64,) + image.shape[1:], np.float32),
                key=jax.random.key(0))
  assert r.shape == (64,) and float(jnp.mean(r)) == pytest.approx(2.0, rel=0.02)
  assert float(jnp.std(r)) > 0  # a random ranking


def test_strip_metrics_refuse_images_whose_strip_is_empty():
  # the reference's grid is j / n - 1/2 per axis: for n = 8 its radii are 0 and >= 1/8, for
  # n = 15 (odd: +-1/30, +-1/10, ...) 0.047 and >= 0.1; neither has one in [0.05, 0.1)
  for n, empty in [(8, True), (15, True), (16, False), (64, False)]:
    assert (not pm.strip_mask(n, n).any()) == empty, n
  with pytest.raises(ValueError, match="holds no frequency of 8x8"):
    pm.check_size(pm.ISNAS_METRICS, 8, 8)
  pm.check_size(pm.LOWPASS_METRICS + ("psd db mse", "psd db hist emd"), 8, 8)
  pm.check_size(pm.ISNAS_METRICS, 16, 16)
  image = np.random.default_rng(4).random((2, 16, 16, 1)).astype(np.float32)
  for name in pm.SIMILARITY_METRICS:
    assert np.isfinite(float(pm.metric(name, image[:1], image[1:])[0])), name


@pytest.mark.parametrize("name", ["psd db", "psd foo mse", "", "psd hist_shared emd"])
def test_bad_metric_names_are_refused(name):
  with pytest.raises(ValueError):
    pm.parse(name)
