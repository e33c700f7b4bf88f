"""The new problems through the runs: deconvolution, single-pixel imaging, Wiener, the
autoencoder, dropout and weight penalties, and the regularisation study."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from flax import nnx

import conftest
from nasdip_jax.baselines import wiener
from nasdip_jax.errors import UserError
from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import operators as ops
from nasdip_jax.nets import registry
from nasdip_jax.nets import skip
from nasdip_jax.runs import common
from nasdip_jax.runs import regularisation
from nasdip_jax.runs import restore
from test_configs_and_cli import load_config


def _tiny(**overrides):
  config = load_config("test").get_config()
  config.update(overrides)
  return config


@pytest.fixture(name="img_u8")
def fixture_img_u8():
  return (np.random.default_rng(0).random((32, 32, 1)) * 255).astype(np.uint8)


def test_deblur_observation_is_the_wrapped_gaussian_blur_plus_noise(img_u8):
  x = img_u8.astype(np.float32) / 255
  blur = ops.Blur.of(ops.gaussian_kernel(1.5, 9))
  _, clean = degrade.make_problem(img_u8, "deblur", np.random.default_rng(1), operator=blur)
  want = scipy.ndimage.gaussian_filter(x[..., 0], 1.5, mode="wrap", truncate=8 / 3)
  np.testing.assert_allclose(clean.observation[0, ..., 0], want, atol=2e-6)
  _, noisy = degrade.make_problem(img_u8, "deblur", np.random.default_rng(1), operator=blur,
                                  noise_std=0.1)
  residual = noisy.observation - clean.observation
  assert abs(residual.std() - 0.1) < 0.01 and abs(residual.mean()) < 0.02


def test_single_pixel_measures_m_coefficients_and_cf1_back_projection_is_the_image(img_u8):
  x = img_u8.astype(np.float32) / 255
  op = ops.Hadamard(32, 32, ops.measurement_count(1024, 4), seed=0)
  spec, p = degrade.make_problem(img_u8, "single_pixel", np.random.default_rng(0), operator=op,
                                 noise_std=0.01)
  assert np.count_nonzero(p.observation) == 256  # noise only on the measured coefficients
  assert np.all(p.observation[0, ..., 0][op.selection == 0] == 0)
  full = ops.Hadamard(32, 32, 1024, seed=0)
  spec, p = degrade.make_problem(img_u8, "single_pixel", np.random.default_rng(0), operator=full)
  np.testing.assert_allclose(degrade.observation_image(spec, p), x, atol=1e-5)  # orthonormal
  np.testing.assert_allclose(degrade.baseline_estimate(spec, p), x, atol=1e-5)


def test_wiener_hand_derived_cases():
  y = np.random.default_rng(2).random((1, 16, 16, 1)).astype(np.float32) * 0.5
  delta = np.zeros((3, 3))
  delta[1, 1] = 1
  # a delta kernel has gain 1 everywhere: X = B / (1 + nsr)
  np.testing.assert_allclose(wiener.wiener(ops.Blur.of(delta), y, 0.25), y / 1.25, atol=1e-6)
  # [0.25, 0.5, 0.25] has gains 0.5 + 0.5 cos(w) > 0 except at w = pi... use an invertible one
  k = np.array([[0.0, 0.0, 0.0], [0.2, 0.6, 0.2], [0.0, 0.0, 0.0]])  # gains 0.6 + 0.4 cos >= 0.2
  blur = ops.Blur.of(k)
  b = blur.apply(jnp.asarray(y), None)
  np.testing.assert_allclose(wiener.wiener(blur, b, 1e-9), y, atol=1e-4)
  assert wiener.nsr_estimate(np.zeros(4), 0.0) == wiener.MIN_NSR
  assert wiener.nsr_estimate(np.array([0.0, 1.0]), 0.1) == pytest.approx(0.01 / 0.25)


def test_wiener_dip_fits_the_wiener_estimate():
  config = _tiny(task="deblur", channels="gray", noise_std=0.01, wiener_dip=True)
  _, spec, p = common.load_problem(config)
  _, blurred_spec, blurred = common.load_problem(_tiny(task="deblur", channels="gray",
                                                       noise_std=0.01))
  assert spec.operator == ops.Identity() and blurred_spec.operator != ops.Identity()
  nsr = 0.01 ** 2 / np.var(blurred.observation)
  want = wiener.wiener(blurred_spec.operator, blurred.observation, nsr)
  np.testing.assert_allclose(p.observation, want, atol=1e-6)
  np.testing.assert_array_equal(p.clean, blurred.clean)


def _net(**kw):
  return skip.SkipNet(8, 3, channels_down=(8, 8), channels_up=(8, 8), rngs=nnx.Rngs(0), **kw)


def test_dropout_keep_one_is_the_plain_network_and_dropout_is_seeded():
  net, z = _net(channels_skip=(4, 4)), jax.random.uniform(jax.random.key(1), (1, 16, 16, 8))
  key = jax.random.key(5)
  np.testing.assert_array_equal(net(z, dropout=(key, 1.0)), net(z))
  a, b = net(z, dropout=(key, 0.5)), net(z, dropout=(key, 0.5))
  np.testing.assert_array_equal(a, b)
  assert np.abs(np.asarray(a - net(z))).max() > 1e-3
  assert np.any(np.asarray(net(z, dropout=(jax.random.key(6), 0.5)) != a))


def test_inverted_dropout_keeps_the_fraction_and_scales():
  drop = skip._dropper((jax.random.key(0), 0.8))  # pylint: disable=protected-access
  out = np.asarray(drop(jnp.ones((1, 64, 64, 16)), 3))
  assert set(np.unique(out)) == {0.0, 1.25}
  assert abs((out > 0).mean() - 0.8) < 0.01


def test_weight_penalties_count_every_convolution_weight():
  net = _net(channels_skip=(4, 4))
  _, params = nnx.split(net, nnx.Param)
  ones = jax.tree.map(jnp.ones_like, params)
  # kernels of a 2-level width-8 skip net, 8 input and 3 output channels (hand count):
  # head 8*3; per level skip 1x1 8->4, down1/down2 3x3 8->8, up1 3x3 12->8, up2 1x1 8->8
  n = 8 * 3 + 2 * (8 * 4 + 2 * 9 * 64 + 9 * 12 * 8 + 64)
  assert len(dip.conv_kernels(params)) == 11
  assert float(dip.weight_penalty(ones, dip.FitConfig(l1=0.5))) == pytest.approx(0.5 * n)
  assert float(dip.weight_penalty(ones, dip.FitConfig(l2=0.5))) == pytest.approx(0.25 * n)
  assert dip.weight_penalty(ones, dip.FitConfig()) == 0.0


def test_autoencoder_is_the_skip_net_without_skip_branches():
  kw = dict(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(4, 4), kernel_down=3,
            kernel_up=3, kernel_skip=1, upsample="bilinear", need1x1_up=True, pad="reflection",
            conv_impl="auto")
  ae = registry.build_model("autoencoder", kw, 8, 1, rngs=nnx.Rngs(0))
  assert all(level.skip is None for level in ae.levels)
  no_skip = skip.SkipNet(8, 1, channels_down=(8, 8), channels_up=(8, 8), channels_skip=(0, 0),
                         rngs=nnx.Rngs(0))
  z = jax.random.uniform(jax.random.key(1), (1, 16, 16, 8))
  np.testing.assert_array_equal(ae(z), no_skip(z))
  with pytest.raises(UserError, match="no skip connections"):
    registry.build_model("autoencoder", {**kw, "channels_skip": (4, 2)}, 8, 1, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("overrides,match", [
    (dict(task="deblur", kernel="KERNEL_TXT"), "not an image file"),
    (dict(task="deblur", kernel="KERNEL_3D"), "2-D numeric array"),
    (dict(task="deblur", kernel="KERNEL_NEG"), "non-negative"),
    (dict(task="deblur", blur_sigma=20.0), "larger than the image"),
    (dict(task="deblur", noise_std=-0.1), "noise_std must be >= 0"),
    (dict(task="deblur", blur_sigma=-1.0), "blur_sigma must be > 0"),
    (dict(task="single_pixel", compression=0.5), "compression must be >= 1"),
    (dict(task="single_pixel", compression=1e6), "leaves no measurement"),
    (dict(task="single_pixel", crop_size=48, crop_multiple=16), "power-of-two.*32x32"),
    (dict(task="denoise", compression=2.0), "config.compression is for task single_pixel"),
    (dict(task="sr", noise_std=0.1), "config.noise_std is for task deblur / single_pixel"),
    (dict(model="autoencoder", net=dict(channels_skip=(4, 2, 4))), "no skip connections"),
    (dict(model="nasdip_denoise", dropout_keep=0.5), "needs a model with dropout"),
    (dict(dropout_keep=0.0), "dropout_keep must be in"),
    (dict(l1=-1.0), "config.l1 must be >= 0"),
])
def test_bad_operator_settings_are_refused_before_writing(tmp_path, overrides, match):
  text = tmp_path / "k.txt"
  text.write_text("not a kernel")
  np.save(tmp_path / "k3.npy", np.ones((3, 3, 3)))
  np.save(tmp_path / "neg.npy", -np.ones((3, 3)))
  files = {"KERNEL_TXT": str(text), "KERNEL_3D": str(tmp_path / "k3.npy"),
           "KERNEL_NEG": str(tmp_path / "neg.npy")}
  overrides = {k: files.get(v, v)
               if isinstance(v, str) else v for k, v in overrides.items()}
  config = _tiny(channels="gray")
  net = overrides.pop("net", {})
  config.update(overrides)
  config.net.update(net)
  with pytest.raises(UserError, match=match) as e:
    restore.run(config, str(tmp_path / "w"))
  assert "\n" not in str(e.value)
  assert not (tmp_path / "w").exists()


def test_kernel_file_is_normalised_and_used(tmp_path):
  k = np.zeros((5, 5), np.uint8)
  k[2, :] = 200  # horizontal motion blur, as an 8-bit image
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(k).save(tmp_path / "k.png")
  _, spec, p = common.load_problem(_tiny(task="deblur", channels="gray", kernel=str(tmp_path / "k.png")))
  np.testing.assert_allclose(spec.operator.array, (k / k.sum()).astype(np.float64))
  want = scipy.ndimage.uniform_filter1d(p.clean[0, ..., 0], 5, axis=1, mode="wrap")
  np.testing.assert_allclose(p.observation[0, ..., 0], want, atol=2e-6)


@pytest.mark.parametrize("task,extra", [("deblur", dict(boundary="reflect", noise_std=0.01)),
                                        ("single_pixel", dict(compression=2.0))])
def test_operator_runs_write_every_output(tmp_path, task, extra):
  s = restore.run(_tiny(task=task, channels="gray", num_steps=6, **extra), str(tmp_path / "w"))
  assert s["task"] == task and s["steps"] == 6 and np.isfinite(s["psnr_final"])
  for f in ("restored.png", "corrupted.png", "side_by_side.png", "summary.json", "curves.npz"):
    assert os.path.isfile(tmp_path / "w" / f), f
  assert 0 <= s["ssim_final"] <= 1
  conftest.assert_strict_json(str(tmp_path / "w"))


def test_regularised_fit_is_the_same_in_a_cohort_and_alone(tmp_path):
  reg = dict(model="autoencoder", dropout_keep=0.8, l1=1e-4, l2=1e-3, num_steps=6)
  single = restore.run(_tiny(seed=3, **reg), str(tmp_path / "one"))
  many = restore.run(_tiny(seed=3, num_seeds=2, **reg), str(tmp_path / "two"))
  plain = restore.run(_tiny(seed=3, model="autoencoder", num_steps=6), str(tmp_path / "plain"))
  assert many["psnr_final_per_seed"][0] == pytest.approx(single["psnr_final"], abs=1e-4)
  assert abs(single["psnr_final"] - plain["psnr_final"]) > 1e-3


def test_regularisation_study_runs_and_resumes(tmp_path):
  config = load_config("regularisation").get_config()
  config.update(num_steps=5, crop_size=32, input_depth=4, targets=("clean", "noisy"),
                regularisers=("none", "l2"), l2=1e-2)
  config.net.update(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(0, 0))
  s = regularisation.run(config, str(tmp_path / "w"))
  rows = {(r["target"], r["regulariser"]): r for r in s["fits"]}
  assert set(rows) == {("clean", "none"), ("clean", "l2"), ("noisy", "none"), ("noisy", "l2")}
  assert "psnr_clean_final" in rows["noisy", "none"] and "psnr_clean_final" not in rows["clean", "l2"]
  assert all(0 < r["ssim_target_final"] <= 1 for r in rows.values())
  for f in ("regularisation.png", "results.csv", "curves.npz", "fit_noisy_l2.png",
            "target_noisy.png"):
    assert os.path.isfile(tmp_path / "w" / f), f
  curves = np.load(tmp_path / "w" / "curves.npz")
  # PSNR against the target is the fit's psnr_obs; for the clean target it is also psnr
  np.testing.assert_array_equal(curves["clean/none/psnr_obs"], curves["clean/none/psnr"])
  again = regularisation.run(config, str(tmp_path / "w"))
  assert again["fits"] == s["fits"]
  with pytest.raises(UserError, match="other settings"):
    regularisation.run(_changed(config), str(tmp_path / "w"))


def _changed(config):
  c = config.copy_and_resolve_references()
  c.l2 = 0.5
  return c


@pytest.mark.parametrize("overrides,match", [
    (dict(targets=("clean", "blurry")), "config.targets"),
    (dict(regularisers=()), "config.regularisers"),
    (dict(dropout_keep=1.0), "needs config.dropout_keep < 1"),
    (dict(l1=0.0), "needs config.l1 > 0"),
])
def test_regularisation_bad_settings(tmp_path, overrides, match):
  config = load_config("regularisation").get_config()
  config.update(overrides)
  with pytest.raises(UserError, match=match):
    regularisation.run(config, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()
