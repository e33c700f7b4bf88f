"""Restoring a real image: ES-WMV, discrepancy and held-out stopping, observation mode (nothing added, any size, no ground
truth read), folders, the Python API and the CLI agreeing."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import conftest
import nasdip_jax
from nasdip_jax import recipes
from nasdip_jax.errors import UserError
from nasdip_jax.fit import dip
from nasdip_jax.fit import early_stop
from nasdip_jax.imaging import degrade
from nasdip_jax.runs import common
from nasdip_jax.runs import restore

TINY_NET = {"channels_down": (4, 4), "channels_up": (4, 4), "channels_skip": (2, 2)}


def _tiny(**fields):
  """A restore config with a 2-level, 4-channel network (fields override)."""
  c = restore.base_config()
  c.net.update(TINY_NET)
  c.input_depth, c.steps_per_call, c.checkpoint_every = 4, 3, 0
  c.update(fields)
  return c


def _run_es(frames, window, patience):
  """ES-WMV over a sequence of (H, W, C) shown images; returns the final state and the per-step
  variance."""
  es = early_stop.init(window, frames.shape[1:])

  def body(es, step_frame):
    step, frame = step_frame
    return early_stop.update(es, step, frame, patience)

  return jax.lax.scan(body, es, (jnp.arange(len(frames)), jnp.asarray(frames)))


def test_es_wmv_stops_at_the_known_step():
  """Outputs are constant only over steps 10..13: the one window of W = 4 constant outputs ends
  at step 13 (VAR 0, every other window's is well above; P = 12 is longer than the 10 steps
  between the first full window and it, so the criterion cannot fire before). P steps later, at
  step 25, it fires; the later windows change nothing."""
  t = np.arange(30, dtype=np.float32)
  flat = (t >= 10) & (t <= 13)
  values = np.where(flat, 0.5, np.sin(t) * 0.3 + 0.5)
  frames = values[:, None, None, None] * np.ones((30, 2, 3, 1), np.float32)
  frames[:, 0, 0, 0] += t * 1e-3 * ~flat  # marks each step's image
  es, var = _run_es(frames, window=4, patience=12)
  assert int(es.step) == 13 and bool(es.stopped)
  np.testing.assert_array_equal(es.image, frames[13])
  assert int(es.wait) == 12  # frozen once it fired at step 25
  assert not bool(_run_es(frames[:25], window=4, patience=12)[0].stopped)
  var = np.asarray(var)
  assert np.all(np.isnan(var[:3])) and abs(var[13]) < 1e-7
  assert np.all(np.delete(var[3:], 10) > 1e-3)


def test_es_wmv_variance_is_the_mean_squared_deviation_from_the_window_average():
  # window (0, 0, 0, 4) of a 1-pixel image: mean 1, deviations 1, 1, 1, 9 -> VAR 3
  frames = np.array([0, 0, 0, 4, 4], np.float32)[:, None, None, None]
  es, var = _run_es(frames, window=4, patience=10)
  assert float(var[3]) == pytest.approx(3.0)
  assert float(var[4]) == pytest.approx(4.0)  # the ring holds (4, 0, 0, 4): mean 2, deviations 4
  assert int(es.step) == 3 and not bool(es.stopped)


def test_es_wmv_running_sums_equal_the_direct_variance():
  """The O(image) per-step sums (recomputed every W steps) against numpy's float64 two-pass
  variance of every window, on a slowly converging sequence (VAR from 1e-2 down to 1e-6)."""
  rng = np.random.default_rng(0)
  t = np.arange(300, dtype=np.float64)[:, None, None, None]
  frames = (0.5 + 0.2 * np.exp(-t / 40) * rng.standard_normal((300, 6, 5, 3)) +
            1e-3 * rng.standard_normal((300, 6, 5, 3))).astype(np.float32)
  _, var = _run_es(frames, window=7, patience=1000)
  f64 = frames.astype(np.float64)
  want = [np.mean(np.square(f64[s - 6:s + 1] - f64[s - 6:s + 1].mean(axis=0)))
          for s in range(6, 300)]
  np.testing.assert_allclose(np.asarray(var)[6:], want, rtol=2e-3)
  assert want[-1] < 1e-5 < 1e-2 < want[0]


def test_auto_patience_scales_with_the_budget():
  assert early_stop.auto_patience(100, 3000) == 1000
  assert early_stop.auto_patience(100, 1500) == 750
  assert early_stop.auto_patience(100, 100) == 100
  assert early_stop.auto_patience(100, 50000) == 1000


def test_the_discrepancy_stop_takes_the_first_step_whose_residual_reaches_the_noise():
  """Residuals 9, 7, 5, 3.9, 2, 5 against the level 4: the stop is step 3 (the first <= 4), its
  image is step 3's, and the later steps change nothing; a level never reached leaves the last
  step's image as the answer and the criterion unfired."""
  frames = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones((6, 2, 2, 1), np.float32)
  residuals = [9.0, 7.0, 5.0, 3.9, 2.0, 5.0]

  def run(level):
    state = early_stop.init_discrepancy(frames.shape[1:])
    for step, (frame, r) in enumerate(zip(frames, residuals)):
      state = early_stop.update_discrepancy(state, step, frame, r, level)
    return state

  stopped = run(4.0)
  assert int(stopped.step) == 3 and bool(stopped.stopped)
  np.testing.assert_array_equal(stopped.image, frames[3])
  never = run(1.0)
  assert int(never.step) == 5 and not bool(never.stopped)
  np.testing.assert_array_equal(never.image, frames[5])


def test_the_holdout_stop_answers_the_minimum_and_fires_after_the_patience():
  """Held-out residuals 5, 4, 3, 3.5, 2.5, 2.6, 2.7, 2.8, 2.9, 1.0 with P = 3: the minimum 2.5 is
  at step 4; steps 5-7 bring none, so it fires at step 7 and step 9's 1.0 changes nothing."""
  frames = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 2, 2, 1),
                                                                           np.float32)
  state = early_stop.init_holdout(frames.shape[1:])
  for step, r in enumerate([5.0, 4.0, 3.0, 3.5, 2.5, 2.6, 2.7, 2.8, 2.9, 1.0]):
    state = early_stop.update_holdout(state, step, frames[step], r, 3)
  assert int(state.step) == 4 and bool(state.stopped) and float(state.residual_min) == 2.5
  np.testing.assert_array_equal(state.image, frames[4])
  assert int(state.wait) == 3


def test_the_residual_is_the_mean_over_the_observed_entries():
  pred = np.zeros((1, 2, 2, 1), np.float32)
  obs = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 2, 2, 1)
  mask = np.array([1, 0, 1, 0], np.float32).reshape(1, 2, 2, 1)
  assert float(early_stop.residual(pred, obs)) == pytest.approx((1 + 4 + 9 + 16) / 4)
  assert float(early_stop.residual(pred, obs, mask)) == pytest.approx((1 + 9) / 2)


def test_auto_stop_by_task_and_off_when_synthetic():
  """Observed denoising and inpainting: the held-out stop (the denoising recipe's refitted);
  the other tasks: ES-WMV; synthetic runs (the paper recipes): none."""
  assert common.auto_stop(_tiny(observed=True)) == "holdout"
  assert common.auto_stop(_tiny(observed=True, task="inpaint")) == "holdout"
  assert common.auto_stop(_tiny(observed=True, task="sr")) == "es-wmv"
  assert common.auto_stop(_tiny(observed=True, task="deblur")) == "es-wmv"
  assert common.auto_stop(_tiny()) == "none"
  assert recipes.restore_config("denoise").holdout_refit
  assert not recipes.restore_config("inpaint").holdout_refit


def test_the_estimated_noise_level_is_near_the_noise_actually_added():
  """The bundled image at sigma 50, clipped as the recipe does: the discrepancy stop's level
  (scikit-image's estimate) is within 10% of the std of the noise the observation really has."""
  loaded = restore.check(_tiny(sigma=50.0, stop="discrepancy"))
  actual = 255.0 * float(np.std(loaded.problem.observation - loaded.problem.clean))
  assert loaded.notes["stop_sigma"] == pytest.approx(actual, rel=0.1)
  assert float(loaded.problem.noise_std[0]) == pytest.approx(loaded.notes["stop_sigma"] / 255)
  given = restore.check(_tiny(sigma=50.0, stop="discrepancy", stop_sigma=42.0))
  assert given.notes["stop_sigma"] == 42.0


def test_a_fit_stops_where_its_residual_curve_first_reaches_the_level(tmp_path):
  """A fit run to the end (stop_ends_fit false) with the discrepancy stop: the stop step is the
  first step whose recorded residual is at most stop_sigma^2, and the answer is that step's image
  (its PSNR is the curve's there). The level is set between two recorded residuals."""
  run = restore.run(_tiny(num_steps=12, sigma=50.0, stop="discrepancy", stop_ends_fit=False,
                          stop_sigma=1.0), str(tmp_path / "far"))
  curves = np.load(tmp_path / "far" / "curves.npz")
  psnr_curve, residual = curves["psnr"], curves["residual"]
  level = float(np.sqrt(residual[7]) * 255.0) + 1e-3  # reached first at step 7 (or earlier)
  first = int(np.argmax(residual <= (level / 255.0) ** 2))
  s = restore.run(_tiny(num_steps=12, sigma=50.0, stop="discrepancy", stop_ends_fit=False,
                        stop_sigma=level), str(tmp_path / "stopped"))
  assert s["stop_step"] == first and s["stopped_at"] == first
  assert s["psnr_stop"] == pytest.approx(float(psnr_curve[first]), abs=1e-4)
  assert run["stopped_at"] is None and run["stop_step"] == 11  # 1/255 is never reached


def test_held_out_entries_never_reach_the_fit_and_the_stop_is_their_residual_minimum(tmp_path):
  """The held-out stop (guard on): changing the observation at the held-out entries (about 10% of
  them) changes no training loss, guard decision or output; only the held-out residual moves.
  The answer is the first minimum of the recorded held-out residual, its PSNR the
  curve's."""
  config = _tiny(num_steps=12, sigma=50.0, stop="holdout", stop_ends_fit=False, es_patience=50)
  loaded = restore.check(config)

  def fit(observation):
    problem = loaded.problem._replace(observation=observation)
    _, data, state, compiled = restore.prepare(config, loaded.spec, problem)
    return np.asarray(data.holdout), dip.fit(compiled, state, data, 12, 3)[1]

  obs = np.asarray(loaded.problem.observation)
  held, curves = fit(obs)
  assert held.shape == obs.shape and 0.08 < held.mean() < 0.12
  _, moved = fit(np.where(held > 0, 1.0 - obs, obs).astype(np.float32))
  for name in ("loss", "psnr", "psnr_obs", "fallback"):
    np.testing.assert_array_equal(moved[name], curves[name])
  assert not np.allclose(moved["holdout"], curves["holdout"])

  s = restore.run(config, str(tmp_path / "run"))
  recorded = np.load(tmp_path / "run" / "curves.npz")
  assert s["stop"] == "holdout" and s["stop_step"] == int(np.argmin(recorded["holdout"]))
  assert s["psnr_stop"] == pytest.approx(float(recorded["psnr"][s["stop_step"]]), abs=1e-4)


def test_holdout_refit_answers_the_plain_fit_at_the_held_out_stop(tmp_path):
  """With holdout_refit the answer is the same-seed fit of all of the observation at the held-out
  stop's step: a plain run's PSNR curve at that step, written as restored.png; the held-out
  fit's own image is reported beside it."""
  fields = dict(num_steps=12, sigma=50.0, lr=0.1, stop_ends_fit=False, es_patience=50)
  with pytest.raises(UserError, match="holdout_refit=false"):
    restore.check(_tiny(stop="holdout", holdout_refit=True, num_seeds=2, **fields))
  s = restore.run(_tiny(stop="holdout", holdout_refit=True, **fields), str(tmp_path / "refit"))
  t = s["stop_step"]
  held = np.load(tmp_path / "refit" / "curves.npz")
  plain = restore.run(_tiny(stop="none", **fields), str(tmp_path / "plain"))
  curve = np.load(tmp_path / "plain" / "curves.npz")["psnr"]
  assert t < 11 and s["psnr_stop"] == pytest.approx(float(curve[t]), abs=1e-4)
  assert abs(curve[t] - curve[-1]) > 1e-3  # the refit is its own, shorter fit
  assert s["psnr_holdout_fit"] == pytest.approx(float(held["psnr"][t]), abs=1e-4)
  assert abs(s["psnr_stop"] - s["psnr_holdout_fit"]) > 1e-3 and plain["steps"] == 12
  written = lambda name: np.asarray(Image.open(tmp_path / "refit" / name), np.float64) / 255
  mse = np.mean((written("restored.png") - written("clean.png")) ** 2)
  assert 10 * np.log10(1 / mse) == pytest.approx(s["psnr_stop"], abs=0.05)


def test_single_pixel_and_inpainting_need_a_given_noise_level_for_the_discrepancy_stop():
  with pytest.raises(UserError, match="stop_sigma"):
    restore.check(_tiny(task="single_pixel", channels="gray", stop="discrepancy"))
  with pytest.raises(UserError, match="stop_sigma"):
    restore.check(_tiny(task="inpaint", stop="discrepancy"))
  assert restore.check(_tiny(task="inpaint", stop="discrepancy", stop_sigma=2.0)).notes[
      "stop_sigma"] == 2.0


def _save(path, array):
  Image.fromarray(array).save(path)
  return str(path)


def _photo(h, w, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  img = np.sort(rng.integers(0, 256, (h, w, channels), dtype=np.uint8), axis=1)
  return img[..., 0] if channels == 1 else img


def test_observed_denoising_reports_its_noise_estimate_and_feeds_it_to_the_discrepancy_stop(
    tmp_path):
  """A photo with sigma-10 noise: stop 'auto' (the held-out stop) needs no level, but the
  estimate is reported; the discrepancy stop takes the estimate, or a given stop_sigma."""
  rng = np.random.default_rng(0)
  smooth = np.repeat(np.repeat(_photo(12, 16, seed=1), 4, 0), 4, 1).astype(np.float64)
  noisy = np.clip(smooth + 10 * rng.standard_normal(smooth.shape), 0, 255).astype(np.uint8)
  image = _save(tmp_path / "noisy.png", noisy)

  def loaded_and_stop(**fields):
    config = _tiny(observed=True, image=image, **fields)
    return restore.check(config), common.fit_config(config).stop

  loaded, stop = loaded_and_stop()
  assert stop == "holdout" and 8 < loaded.notes["noise_sigma_estimate"] < 12
  assert "stop_sigma" not in loaded.notes and loaded.problem.noise_std is None
  loaded, stop = loaded_and_stop(stop="discrepancy")
  assert stop == "discrepancy"
  assert loaded.notes["stop_sigma"] == loaded.notes["noise_sigma_estimate"]
  assert float(loaded.problem.noise_std[0]) == pytest.approx(loaded.notes["stop_sigma"] / 255)
  assert loaded_and_stop(stop="discrepancy", stop_sigma=20.0)[0].notes["stop_sigma"] == 20.0


@pytest.mark.parametrize("task,size,channels,out", [
    ("denoise", (75, 100), 3, (75, 100)), ("denoise", (61, 37), 3, (61, 37)),
    ("denoise", (400, 150), 1, (400, 150)), ("sr", (29, 37), 3, (116, 148))])
def test_an_observation_is_padded_never_changed_and_no_ground_truth_is_read(
    tmp_path, monkeypatch, task, size, channels, out):
  monkeypatch.setattr(degrade, "make_problem", None)  # the synthetic path would call it
  img = _photo(*size, channels)
  c = _tiny(task=task, observed=True, image=_save(tmp_path / "obs.png", img),
            channels="rgb" if channels == 3 else "gray")
  loaded = common.load_restoration(c)
  assert loaded.size == out and not loaded.has_reference
  clean, obs = loaded.problem.clean[0], loaded.problem.observation[0]
  assert clean.shape[0] % 32 == 0 and clean.shape[1] % 32 == 0 and not clean.any()
  np.testing.assert_array_equal(obs[:size[0], :size[1]],
                                img.reshape(size + (channels,)) / np.float32(255))
  assert obs.shape[0] * loaded.spec.factor == clean.shape[0]


def test_observation_mode_refuses_synthetic_settings_and_a_missing_image(tmp_path):
  image = _save(tmp_path / "obs.png", _photo(40, 40))
  with pytest.raises(UserError, match="sigma degrades a clean image"):
    restore.check(_tiny(observed=True, image=image, sigma=15.0))
  with pytest.raises(UserError, match="give it with --config.image"):
    restore.check(_tiny(observed=True))
  with pytest.raises(UserError, match="needs its mask"):
    restore.check(_tiny(observed=True, image=image, task="inpaint"))
  with pytest.raises(UserError, match="reference is for observation mode"):
    restore.check(_tiny(image=image, reference=image))


def test_an_unpadded_observation_fits_exactly_as_the_synthetic_run(tmp_path):
  """The synthetic run's own noisy image, given as an observation with its clean reference,
  gives the same curves and images (64 px: nothing padded)."""
  synthetic = _tiny(num_steps=6, stop="none")
  loaded = restore.check(synthetic)
  np.save(tmp_path / "noisy.npy", loaded.problem.observation[0])
  np.save(tmp_path / "clean.npy", loaded.problem.clean[0])
  a = restore.run(synthetic, str(tmp_path / "synthetic"))
  b = restore.run(_tiny(num_steps=6, stop="none", observed=True, image=str(tmp_path / "noisy.npy"),
                        reference=str(tmp_path / "clean.npy")), str(tmp_path / "observed"))
  for k in ("psnr_final", "psnr_best", "best_step", "ssim_final"):
    assert a[k] == b[k], k
  curves = lambda d: np.load(tmp_path / d / "curves.npz")
  np.testing.assert_array_equal(curves("synthetic")["psnr"], curves("observed")["psnr"])
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "synthetic" / "restored.png")),
                                np.asarray(Image.open(tmp_path / "observed" / "restored.png")))


def test_api_restores_odd_sizes_to_their_own_size_without_ground_truth_numbers(tmp_path):
  noisy = _photo(61, 37)
  result = nasdip_jax.restore(noisy, "denoise", steps=5, stop="es-wmv", es_window=2, es_patience=1,
                              input_depth=4, steps_per_call=5, net=TINY_NET,
                              workdir=str(tmp_path / "api"))
  assert result.image.shape == (61, 37, 3) and result.final.shape == (61, 37, 3)
  assert Image.open(tmp_path / "api" / "restored.png").size == (37, 61)
  assert 1 <= result.stop_step <= 4 and "wmv" in result.curves
  assert result.summary["stopped_at"] in (None, result.stop_step + 1)
  assert "noise_sigma_estimate" in result.summary
  text = json.dumps(result.summary) + open(tmp_path / "api" / "metrics.jsonl").read()
  assert "psnr\"" not in text and "ssim" not in text and "psnr_best" not in text
  assert "psnr" not in np.load(tmp_path / "api" / "curves.npz").files
  conftest.assert_strict_json(str(tmp_path / "api"))
  sr = nasdip_jax.restore(_photo(29, 37), "sr", factor=4, steps=2, stop="none", input_depth=4,
                          steps_per_call=2, net=TINY_NET, workdir=str(tmp_path / "sr"))
  assert sr.image.shape == (116, 148, 3) and sr.stop_step is None


def test_a_folder_batch_mirrors_the_tree_and_resumes_without_redoing_finished_images(
    tmp_path, monkeypatch):
  folder = tmp_path / "photos"
  (folder / "sub").mkdir(parents=True)
  _save(folder / "a.png", _photo(75, 100, seed=1))  # 100x75: padded to 128x96, cropped back
  _save(folder / "sub" / "b.png", _photo(64, 64, seed=2))
  _save(folder / "sub" / "c.png", _photo(64, 64, seed=3))
  config = _tiny(observed=True, image=str(folder), num_steps=4, es_window=2, es_patience=5)
  work = str(tmp_path / "work")
  real_run, calls = restore.run, []

  def killed_at_c(c, workdir):
    if c.image.endswith("c.png"):
      raise KeyboardInterrupt  # the kill
    calls.append(c.image)
    return real_run(c, workdir)

  monkeypatch.setattr(restore, "run", killed_at_c)
  with pytest.raises(KeyboardInterrupt):
    real_run(config, work)
  assert len(calls) == 2 and os.path.exists(os.path.join(work, "sub", "b", "summary.json"))
  monkeypatch.setattr(restore, "run", lambda c, w: calls.append(c.image) or real_run(c, w))
  summary = real_run(config, work)
  assert calls[2:] == [str(folder / "sub" / "c.png")]  # a and b were not run again
  assert summary["num_images"] == 3
  lines = open(os.path.join(work, "results.csv")).read().splitlines()
  assert lines[0].startswith("image,image_size,steps,stop_step") and len(lines) == 4
  assert [l.split(",")[0] for l in lines[1:]] == ["a", os.path.join("sub", "b"),
                                                   os.path.join("sub", "c")]
  assert os.path.exists(os.path.join(work, "results.md"))
  assert Image.open(os.path.join(work, "a", "restored.png")).size == (100, 75)


def test_api_and_cli_give_the_same_image(tmp_path):
  """A 150x400 grayscale photo, the same seed: the same restored array (the CLI compiled with the
  suite's XLA setting, so the programs are the same)."""
  noisy = _save(tmp_path / "noisy.png", _photo(400, 150, 1))
  net = [f"--config.net.{k}={v}" for k, v in TINY_NET.items()]
  args = ["--config=configs/denoise.py", f"--workdir={tmp_path / 'cli'}", "--config.observed=true",
          f"--config.image={noisy}", "--config.channels=gray", "--config.num_steps=4",
          "--config.es_window=2", "--config.input_depth=4", "--config.steps_per_call=4",
          "--config.seed=3", *net]
  env = {**os.environ, "JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "JAX_NUM_CPU_DEVICES": "8"}
  done = subprocess.run([sys.executable, "-m", "nasdip_jax.main", *args], cwd=conftest.REPO,
                        env=env, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  api = nasdip_jax.restore(noisy, "denoise", steps=4, es_window=2, input_depth=4,
                           steps_per_call=4, seed=3, net=TINY_NET, workdir=str(tmp_path / "api"))
  assert api.image.shape == (400, 150, 1)
  assert Image.open(tmp_path / "cli" / "restored.png").size == (150, 400)
  np.testing.assert_array_equal(np.load(tmp_path / "cli" / "restored.npy"), api.image)


def test_a_colour_key_marks_the_missing_pixels(tmp_path):
  img = _photo(40, 48)
  img[img.sum(axis=-1) == 3 * 255] = 0  # no accidental key colour
  img[5:9, 10:20] = (255, 0, 255)
  config = _tiny(task="inpaint", observed=True, image=_save(tmp_path / "o.png", img),
                 mask_color="255,0,255")
  mask = restore.check(config).problem.mask[0, :40, :48, 0]
  want = np.ones((40, 48), np.float32)
  want[5:9, 10:20] = 0
  np.testing.assert_array_equal(mask, want)
  for colour, message in (("255,0", "3 comma-separated values"), ("1,2,3", "no pixel")):
    with pytest.raises(UserError, match=message):
      restore.check(_tiny(task="inpaint", observed=True, image=config.image, mask_color=colour))


def test_the_memory_check_proposes_a_size_that_fits():
  # 4x the memory there is: half the sides, rounded down to multiples of 32
  assert restore.fitting_size(1000, 500, 4 * 2**30, 2**30, 32) == (480, 224)
  assert restore.fitting_size(100, 64, 100 * 2**30, 2**30, 32) == (32, 32)  # at least one tile
