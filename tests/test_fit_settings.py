"""Every kind of run hands every fit field of its config to the fit: restore (one seed and
several), ISNAS (cohorts and final run), the NAS dataset, the RL search (rewards and final run).
The fits themselves are replaced by a recorder (what reaches `fit.cohort.train` is what its step
function is made from; the single restore run is stopped where it makes its step function), so
this checks the plumbing, not the training."""

import numpy as np
import pytest

from nasdip_jax.fit import cohort
from nasdip_jax.fit import dip
from nasdip_jax.runs import candidates
from nasdip_jax.runs import common
from nasdip_jax.runs import isnas
from nasdip_jax.runs import nas_dataset
from nasdip_jax.runs import restore
from nasdip_jax.runs import rl_search
from test_configs_and_cli import load_config

# every field of FitConfig away from its default (input_depth where the run allows)
SETTINGS = dict(lr=0.0023, reg_noise_std=0.071, ema_decay=0.37, backtrack_db=2.9)


class _Stop(Exception):
  pass


def _fake_train(seen):
  """cohort.train's stand-in: records the recipe's FitConfig, returns plausible results."""

  def train(recipe, members, num_steps, **kwargs):
    del kwargs
    seen.append(recipe.cfg)
    n = cohort.num_members(members)
    clean = np.asarray(members.problems.clean)[:, 0]
    curve = np.tile(np.linspace(10, 20, num_steps, dtype=np.float32), (n, 1))
    return cohort.CohortResult(
        curves={k: curve for k in dip.STEP_METRICS}, final=clean, best=clean,
        best_psnr=curve.max(axis=1), best_step=np.full(n, num_steps - 1),
        num_fallbacks=np.zeros(n, int),
        info={"execution": "loop", "members": n, "resumed_members": 0, "compile_seconds": 0.0,
              "fit_seconds": 1.0, "wall_seconds": 1.0, "member_steps_per_sec": 1.0,
              "devices": 1, "chunk_members": 1})

  return train


def _fake_scores(config, spec, problem, genotypes, workdir):
  del spec, problem, workdir
  values = np.random.default_rng(0).random((len(genotypes), len(config.table_metrics)))
  return values, {"seconds": 0.0}


@pytest.fixture
def seen(monkeypatch):
  recorded = []
  monkeypatch.setattr(cohort, "train", _fake_train(recorded))
  monkeypatch.setattr(candidates, "score", _fake_scores)
  return recorded


def _want(config, input_depth):
  return dip.FitConfig(**SETTINGS, input_depth=input_depth)


def test_single_restore_run(monkeypatch, tmp_path):
  made = []

  def make_step_fn(graphdef, tx, spec, cfg, vmapped=False):
    del graphdef, tx, spec, vmapped
    made.append(cfg)
    raise _Stop()

  monkeypatch.setattr(dip, "make_step_fn", make_step_fn)
  c = load_config("test").get_config()
  c.update(SETTINGS, input_depth=5)
  with pytest.raises(_Stop):
    restore.run(c, str(tmp_path / "r"))
  assert made == [_want(c, 5)]


def test_restore_seeds(seen, tmp_path):
  c = load_config("test").get_config()
  c.update(SETTINGS, input_depth=5, num_seeds=2)
  restore.run(c, str(tmp_path / "r"))
  assert seen == [_want(c, 5)]


def test_isnas_cohorts_and_final_runs(seen, tmp_path):
  c = load_config("isnas_denoise").get_config()
  c.update(SETTINGS, num_candidates=4, top_n=2, width=8, num_steps=3, crop_size=32,
           rank_by=("psd db strip mse",), network="static")
  isnas.run(c, str(tmp_path / "i"))
  # input_depth 0: the image's channels; static networks: one cohort per member, then the final
  assert seen == [_want(c, 3)] * 3


def test_nas_dataset(seen, tmp_path):
  c = load_config("nas_dataset").get_config()
  c.update(SETTINGS, input_depth=6, num_candidates=4, top_ns=(1, 2), width=8, num_steps=3,
           crop_size=32, tasks=("denoise",), network="static")
  nas_dataset.run(c, str(tmp_path / "d"))
  assert seen == [_want(c, 6)] * 4  # static networks: one cohort per architecture


def test_rl_search_rewards_and_final_run(seen, tmp_path):
  c = load_config("rl_denoise").get_config()
  assert c.backtrack_db == 5.0 == load_config("denoise").get_config().backtrack_db
  c.update(SETTINGS, input_depth=7, width=8, num_steps=3, crop_size=32,
           num_controller_steps=1, samples_per_step=1, network="static", sampler="random",
           train_images=common.default_image("sr"))
  rl_search.run(c, str(tmp_path / "rl"))
  assert seen == [_want(c, 7)] * 2  # the sample's reward, the final run
