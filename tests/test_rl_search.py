"""The RL search run: DIP rewards over training images, reports, prefilter, resume, final run."""

import csv
import importlib.util
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

import conftest
from conftest import REPO
from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.fit import dip
from nasdip_jax.imaging import io as image_io
from nasdip_jax.runs import common
from nasdip_jax.runs import genotype_fit
from nasdip_jax.runs import rl_search
from nasdip_jax.space import genotype as gt


def _config(**overrides):
  spec = importlib.util.spec_from_file_location("rl_denoise",
                                                os.path.join(REPO, "configs", "rl_denoise.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  # the shapes and fit settings of tests/test_cohort.py's dynamic cohort: one cached program
  c.update(width=16, input_depth=8, ema_decay=0.9, backtrack_db=0.0, steps_per_call=2,
           crop_size=32, num_steps=4,
           num_controller_steps=2, samples_per_step=2, checkpoint_every=0, execution="loop",
           network="dynamic")
  c.update(overrides)
  return c


def test_reward_is_the_mean_over_images_of_final_or_windowed_best_psnr():
  curves = np.array([[10.0, 14.0, 12.0, 11.0], [20.0, 18.0, 19.0, 17.0]])
  assert rl_search.reward_of(curves, "final", 0) == pytest.approx((11 + 17) / 2)
  assert rl_search.reward_of(curves, "best", 0) == pytest.approx((14 + 20) / 2)
  assert rl_search.reward_of(curves, "best", 2) == pytest.approx((12 + 19) / 2)


@pytest.fixture
def held_out_image(tmp_path):
  """A 32-px crop of the bundled house.png: the final run's image."""
  img = image_io.load_image(os.path.join(common.ASSETS, "house.png"), "rgb")
  path = str(tmp_path / "house32.png")
  Image.fromarray(image_io.center_crop(img, 32)).save(path)
  return path


@conftest.DYNAMIC_PROGRAM
def test_tiny_search_end_to_end_with_prefilter_resume_and_final_run(tmp_path, held_out_image):
  workdir = str(tmp_path / "rl")
  config = _config(image=held_out_image, prefilter_metric="psd db strip mse", prefilter_pool=8,
                   prefilter_quantile=0.01)
  s = rl_search.run(config, workdir)
  assert s["train_images"] == ["butterfly.png", "cameraman.png"]  # all bundled but house.png
  rows = list(csv.DictReader(open(os.path.join(workdir, "history.csv"))))
  assert len(rows) == 4 == s["samples"] and [r["step"] for r in rows] == ["0", "0", "1", "1"]
  evaluated = [r for r in rows if r["status"] == "evaluated"]
  assert {r["status"] for r in rows[:2]} == {"evaluated"}  # nothing is rejected before a floor
  for r in evaluated:  # the reward is the mean final PSNR of the stored curves
    curves = np.load(os.path.join(workdir, "evaluations", r["name"] + ".npz"))["psnr"]
    assert curves.shape == (2, 4)
    assert float(r["reward"]) == pytest.approx(curves[:, -1].mean(), abs=1e-5)
  floor = min(float(r["reward"]) for r in rows[:2])
  prefilter = json.load(open(os.path.join(workdir, "prefilter.json")))
  assert prefilter["threshold"] == pytest.approx(np.quantile(prefilter["pool"], 0.01))
  for r in rows[2:]:  # rejected ones get the lowest reward so far, untrained
    if r["status"] == "rejected":
      assert float(r["reward"]) == pytest.approx(floor)
      assert not os.path.exists(os.path.join(workdir, "evaluations", r["name"] + ".npz"))
  assert s["num_rejected"] == sum(r["status"] == "rejected" for r in rows) >= 1
  best = json.load(open(os.path.join(workdir, "best.json")))
  top = max(evaluated, key=lambda r: float(r["reward"]))
  assert best["name"] == top["name"] == s["genotype"]
  assert open(os.path.join(workdir, "best_genotype.txt")).read().strip() == best["name"]
  curves = np.load(os.path.join(workdir, "evaluations", best["name"] + ".npz"))["psnr"]
  assert best["t_star"] == int(np.argmax(curves.mean(axis=0))) + 1 == s["t_star"]
  final = json.load(open(os.path.join(workdir, "final", "summary.json")))
  assert final["genotype"] == best["name"] and final["steps"] == best["t_star"]
  assert final["image"] == "house32.png" and np.isfinite(s["psnr_final"])
  assert os.path.isfile(os.path.join(workdir, "reward.png"))
  assert s["evaluations_per_hour"] > 0
  assert conftest.assert_strict_json(workdir) >= 5  # config, best, prefilter, summaries
  # rerun with one more controller step: the first two steps are kept, not recomputed
  more = rl_search.run(_config(image=held_out_image, prefilter_metric="psd db strip mse",
                               prefilter_pool=8, prefilter_quantile=0.01,
                               num_controller_steps=3, final_run=False), workdir)
  rows3 = list(csv.DictReader(open(os.path.join(workdir, "history.csv"))))
  assert rows3[:4] == rows and len(rows3) == 6
  assert more["evaluations_this_run"] <= 2 and more["evaluations_per_hour"] > 0
  with pytest.raises(UserError, match="other settings \\(seed\\)"):
    rl_search.run(_config(image=held_out_image, prefilter_metric="psd db strip mse",
                          prefilter_pool=8, prefilter_quantile=0.01, seed=1), workdir)


def test_random_sampler_with_static_networks_matches_a_restore_run(tmp_path):
  c = _config(sampler="random", final_run=False, num_controller_steps=1, samples_per_step=1,
              network="static", train_images=os.path.join(common.ASSETS, "butterfly.png"))
  s = rl_search.run(c, str(tmp_path / "r"))
  assert s["sampler"] == "random" and s["network"] == "static" and s["samples"] == 1
  assert s["num_evaluated"] == 1 and "psnr_final" not in s
  # the reward is the final PSNR of a plain fit of that genotype with the genotype's key
  _, spec, problems = rl_search.load_train_problems(c)
  g = gt.from_name(s["best"]["name"])
  cfg = dip.FitConfig(lr=c.lr, reg_noise_std=c.reg_noise_std, ema_decay=c.ema_decay,
                      input_depth=c.input_depth)
  key = jax.random.fold_in(rl_search.genotype_key(c.seed, s["best"]["name"]), 0)
  # the same network, settings and chunking as the search's fit: its compiled program again
  single = cohort.train(cohort.Recipe(genotype_fit.StaticBuilder(c.input_depth, 3, g, c.width),
                                      spec, cfg),
                        cohort.make_members(key[None], problems[0]), c.num_steps,
                        steps_per_call=c.steps_per_call, execution="loop")
  assert single.info["compile_seconds"] == 0.0
  assert s["best"]["reward"] == pytest.approx(float(single.curves["psnr"][0, -1]), abs=1e-5)


def _small_image(tmp_path):
  path = str(tmp_path / "tiny.png")
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
  return path


@pytest.mark.parametrize("overrides,match", [
    (dict(reward="last"), "config.reward"),
    (dict(crop_size=48), "multiple of 32"),
    (dict(prefilter_metric="psd foo mse"), "unknown transformations"),
    (dict(reward_window=9), "reward_window"),
    (dict(train_images="EMPTY_DIR"), "no images"),
    (dict(train_images="SMALL"), "smaller than config.crop_size"),
    (dict(train_images="/nope/a.png"), "not found"),
    (dict(task="sr", crop_size=32, prefilter_metric="psd db strip mse"),
     "holds no frequency of 8x8"),
])
def test_bad_rl_configs_are_refused_before_writing(tmp_path, overrides, match):
  if overrides.get("train_images") == "EMPTY_DIR":
    os.makedirs(tmp_path / "empty")
    overrides["train_images"] = str(tmp_path / "empty")
  if overrides.get("train_images") == "SMALL":
    overrides["train_images"] = _small_image(tmp_path)
  with pytest.raises(UserError, match=match):
    rl_search.run(_config(**overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()
