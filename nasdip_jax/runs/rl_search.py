"""NAS-DIP's reinforcement-learning search: an LSTM controller samples genotypes, each is fitted
with DIP to a held-out set of training images, and its PSNR is the REINFORCE reward.

    from nasdip_jax.runs import rl_search
    summary = rl_search.run(config, workdir)   # configs/rl_*.py

Each controller step trains its new genotypes on every training image (`runs.genotype_fit`:
the dynamic network as one cohort, or static networks, the faster choice on CPU). The reward of a genotype is its PSNR after
`num_steps` DIP steps (`reward="final"`) or the best PSNR over the last `reward_window` steps
(`"best"`), averaged over the images. Optionally an ISNAS-DIP metric rejects samples before any
training (`prefilter_metric`): those scoring worse than the `prefilter_quantile` of a random pool
get the lowest reward evaluated so far, untrained (until one genotype is evaluated, none is
rejected). The best genotype's mean PSNR curve gives the
stopping step t*, and the final run restores `config.image` (not a training image) with it.

Workdir: `controller/` (Orbax: controller, Adam, baseline, key, history; resumed exactly),
`evaluations/<genotype>.npz` (each evaluated genotype's PSNR curves), `history.csv` (every
sample), `best.json` + `best_genotype.txt` (best so far, after every step), `reward.png`,
`final/` (the restore run of the best genotype) and `summary.json`.
"""

import glob
import json
import os
import shutil
import time
import zlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import image_sets
from nasdip_jax.imaging import io as image_io
from nasdip_jax.report import files
from nasdip_jax.report import progress
from nasdip_jax.runs import common
from nasdip_jax.runs import genotype_fit
from nasdip_jax.search import controller as controller_lib
from nasdip_jax.search import isnas
from nasdip_jax.search import reinforce
from nasdip_jax.space import codec
from nasdip_jax.space import decisions as decisions_lib
from nasdip_jax.space import genotype as gt

REWARDS = ("final", "best")


def base_config() -> ml_collections.ConfigDict:
  """Every field of an RL search; configs/rl_*.py set the task recipes."""
  c = ml_collections.ConfigDict()
  c.run = "rl_search"
  common.degradation_fields(c)    # seed: also controller init and sampling, DIP inits
  c.train_images = ""             # a folder, comma-separated files or tfds:NAME[:SPLIT]
                                  # (imaging.image_sets); "" = the bundled images other than the
                                  # task's default; all converted to config.channels
  c.tfds_data_dir = ""            # for tfds: sets ("" = TFDS's default)
  c.image = ""                    # held-out image of the final run; "" = the task's bundled one
  c.crop_size = 64                # training images: centre crop to crop_size x crop_size
  c.width = 128                   # channels of every NAS-DIP network
  c.network = "auto"              # static | dynamic | auto (static on CPU), see runs.genotype_fit
  common.fit_fields(c)
  c.ema_decay = 0.99
  c.num_steps = 500               # DIP steps per evaluation
  c.reward = "final"              # final | best (best PSNR over the last reward_window steps)
  c.reward_window = 0             # 0 = the whole curve
  c.connections = "table"         # table (25 decisions) | pattern (9, shared by every stage)
  c.sampler = "controller"        # controller | random (the uniform baseline, same budget)
  c.num_controller_steps = 100
  c.samples_per_step = 4
  c.controller = ml_collections.ConfigDict(dict(
      hidden=100, lr=3.5e-4, b1=0.0, b2=0.9, baseline_decay=0.9, entropy_weight=1e-3,
      entropy_in="reward"))
  c.prefilter_metric = ""         # e.g. "psd db strip mse": reject samples before training
  c.prefilter_quantile = 0.5      # reject above this quantile of the random pool's values
  c.prefilter_pool = 200
  c.final_run = True              # restore config.image with the best genotype for t* steps
  c.final_steps = 0               # 0 = t* from the search
  common.execution_fields(c)
  return c


def _check_config(config) -> None:
  common.check_degradation(config, common.SEARCH_TASKS)
  common.check_choice(config, "reward", REWARDS)
  common.check_at_least(config, ["num_steps", "num_controller_steps", "samples_per_step",
                                 "width", "crop_size"])
  common.check_at_least(config, ["final_steps"], 0)
  common.check_fit(config, "nasdip")
  common.check_execution(config)
  if config.crop_size % 32:
    raise UserError(f"config.crop_size must be a multiple of 32, got {config.crop_size}")
  genotype_fit.resolve_network(config.network)
  if not 0 <= config.reward_window <= config.num_steps:
    raise UserError("config.reward_window must be in 0..num_steps")
  if config.prefilter_metric:
    common.check_metrics([config.prefilter_metric])
    if not 0 < config.prefilter_quantile <= 1 or config.prefilter_pool < 2:
      raise UserError("prefilter_quantile must be in (0, 1] and prefilter_pool >= 2")


def _decisions(config) -> decisions_lib.Decisions:
  return decisions_lib.Decisions(gt.Space.reference(config.width), config.connections)


def _reinforce_config(config) -> reinforce.ReinforceConfig:
  return reinforce.ReinforceConfig(samples_per_step=config.samples_per_step,
                                   sampler=config.sampler, **config.controller.to_dict())


def train_images(config) -> list:
  """[(name, uint8 image)] of config.train_images (converted to config.channels); "" = the
  bundled images other than the task's default."""
  spec = config.train_images.strip()
  if not spec:
    held_out = common.default_image(config.task)
    spec = ",".join(p for p in common.bundled_images() if p != held_out)
  return image_sets.load(spec, config.channels, config.tfds_data_dir)


def load_train_problems(config):
  """(names, spec, problems): each training image centre-cropped to crop_size and degraded."""
  names, problems, spec = [], [], None
  for m, (name, img) in enumerate(train_images(config)):
    if min(img.shape[:2]) < config.crop_size:
      raise UserError(f"training image {name}: is {img.shape[1]}x{img.shape[0]} px, smaller "
                      f"than config.crop_size={config.crop_size}")
    img = image_io.center_crop(img, config.crop_size)
    spec, problem = degrade.make_problem(
        img, config.task, np.random.default_rng([config.seed, m]), sigma=config.sigma,
        keep_fraction=config.keep_fraction, factor=config.factor)
    names.append(name)
    problems.append(problem)
  return names, spec, problems


def reward_of(curves: np.ndarray, reward: str, window: int) -> float:
  """The reward of PSNR curves (images, steps): mean over images of the final PSNR, or of the
  best PSNR over the last `window` steps (0 = all)."""
  if reward == "final":
    return float(np.mean(curves[:, -1]))
  return float(np.mean(np.max(curves[:, -window:] if window else curves, axis=1)))


def genotype_key(seed: int, name: str):
  """The PRNG key of a genotype's fits: a function of its name, so a genotype always gets the
  same initialisation, z and noise (rewards are reproducible and cacheable)."""
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


class DipReward:
  """reward_fn for reinforce.search: DIP fits of new genotypes over the training images."""

  def __init__(self, config, spec, problems, workdir):
    self.config, self.spec, self.problems, self.workdir = config, spec, problems, workdir
    self.decisions = _decisions(config)
    self.network = genotype_fit.resolve_network(config.network)
    self.psnr_input = float(np.mean([degrade.quality(spec, p.clean[0],
                                                     degrade.baseline_estimate(spec, p))
                                     for p in problems]))
    self.evaluated = 0
    self._filter = self._make_filter() if config.prefilter_metric else None
    os.makedirs(os.path.join(workdir, "evaluations"), exist_ok=True)

  def _make_filter(self):
    """(scorer, threshold): the metric on the first training image, rejecting above the
    quantile of a pool of uniformly sampled genotypes (its values kept in prefilter.json)."""
    config, problem = self.config, self.problems[0]
    h, w = problem.clean.shape[1:3]
    scorer = isnas.make_scorer(self.spec, problem.observation, (h, w), config.width,
                               [config.prefilter_metric], 1, 1)
    path = os.path.join(self.workdir, "prefilter.json")
    if os.path.exists(path):
      threshold = json.load(open(path, encoding="utf-8"))["threshold"]
    else:
      actions, _, _ = controller_lib.sample(None, None, self.decisions,
                                            jax.random.key(self.config.seed + 1),
                                            config.prefilter_pool)
      pool = [self._score(scorer, self.decisions.decode(a)) for a in np.asarray(actions)]
      threshold = float(np.quantile(pool, config.prefilter_quantile))
      files.write_json(path, {"metric": config.prefilter_metric, "threshold": threshold,
                              "quantile": config.prefilter_quantile, "pool": pool})
    return scorer, threshold

  def _score(self, scorer, genotype) -> float:
    key = genotype_key(self.config.seed, gt.to_name(genotype))
    return float(scorer(key, codec.encode(genotype, self.config.width))[0])

  def _lowest_reward(self):
    """The lowest reward of any evaluated genotype (a rejected sample's reward), None if none."""
    found = glob.glob(os.path.join(self.workdir, "evaluations", "*.npz"))
    if not found:
      return None
    rewards = []
    for path in found:
      with np.load(path) as z:
        rewards.append(reward_of(z["psnr"], self.config.reward, self.config.reward_window))
    return min(rewards)

  def _path(self, name):
    return os.path.join(self.workdir, "evaluations", name + ".npz")

  def __call__(self, step: int, sequences: list) -> tuple:
    genotypes = [self.decisions.decode(a) for a in sequences]
    names = [gt.to_name(g) for g in genotypes]
    rewards, statuses = [None] * len(names), ["evaluated"] * len(names)
    floor = self._lowest_reward() if self._filter is not None else None
    if floor is not None:
      scorer, threshold = self._filter
      for i, g in enumerate(genotypes):
        if self._score(scorer, g) > threshold:
          rewards[i], statuses[i] = floor, "rejected"
    todo = [i for i in range(len(names)) if rewards[i] is None
            and not os.path.exists(self._path(names[i]))]
    cohort_dir = os.path.join(self.workdir, "cohorts", f"step_{step:05d}")
    for stale in glob.glob(os.path.join(self.workdir, "cohorts", "step_*")):
      if stale != cohort_dir:
        shutil.rmtree(stale, ignore_errors=True)
    if todo:
      self._train([genotypes[i] for i in todo], [names[i] for i in todo], cohort_dir)
    shutil.rmtree(cohort_dir, ignore_errors=True)
    for i, name in enumerate(names):
      if rewards[i] is None:
        with np.load(self._path(name)) as z:
          rewards[i] = reward_of(z["psnr"], self.config.reward, self.config.reward_window)
    self.evaluated += len(todo)
    return rewards, statuses

  def _train(self, genotypes, names, cohort_dir) -> None:
    config, m = self.config, len(self.problems)
    keys = jnp.stack([jax.random.fold_in(genotype_key(config.seed, n), j)
                      for n in names for j in range(m)])
    t0 = time.perf_counter()
    result = genotype_fit.fit_genotypes(config, self.spec, genotypes, self.problems, keys,
                                        config.num_steps, cohort_dir)
    seconds = (time.perf_counter() - t0) / len(genotypes)  # incl. compiling, excl. resumed work
    psnr = result.curves["psnr"].reshape(len(genotypes), m, -1)
    for g, name in enumerate(names):
      image_io.atomic_write(self._path(name), lambda f, g=g: np.savez(
          f, psnr=psnr[g], best_psnr=result.best_psnr[g * m:(g + 1) * m], seconds=seconds))

  def evaluations_per_hour(self):
    """Over every evaluation of the workdir that recorded its time (a resumed fit's time counts
    only the part run after the resume)."""
    seconds = []
    for path in glob.glob(os.path.join(self.workdir, "evaluations", "*.npz")):
      with np.load(path) as z:
        if "seconds" in z.files:
          seconds.append(float(z["seconds"]))
    return 3600 * len(seconds) / sum(seconds) if seconds and sum(seconds) > 0 else None

  def curves(self, name: str) -> np.ndarray:
    with np.load(self._path(name)) as z:
      return z["psnr"]


def _best(history, decisions, reward_fn) -> dict:
  evaluated = np.flatnonzero(history["status"] == reinforce.STATUSES.index("evaluated"))
  if not len(evaluated):
    return {}
  i = int(evaluated[np.argmax(history["reward"][evaluated])])
  genotype = decisions.decode(history["actions"][i])
  name = gt.to_name(genotype)
  mean_curve = reward_fn.curves(name).mean(axis=0)
  return {"name": name, "cell": genotype.cell.describe(), "reward": float(history["reward"][i]),
          "found_at_step": i // reward_fn.config.samples_per_step, "sample_index": i,
          "t_star": int(np.argmax(mean_curve)) + 1, "psnr_at_t_star": float(mean_curve.max())}


def _write_reports(workdir, config, history, decisions, reward_fn) -> dict:
  batch = config.samples_per_step
  names = [gt.to_name(decisions.decode(a)) for a in history["actions"]]
  files.write_csv(os.path.join(workdir, "history.csv"),
                  ["step", "sample", "name", "cell", "reward", "status", "logp", "entropy"],
                  [[i // batch, i % batch, n, decisions.decode(a).cell.describe(),
                    float(r), reinforce.STATUSES[s], float(lp), float(e)]
                   for i, (n, a, r, s, lp, e) in enumerate(zip(
                       names, history["actions"], history["reward"], history["status"],
                       history["logp"], history["entropy"]))])
  best = _best(history, decisions, reward_fn)
  if best:
    files.write_json(os.path.join(workdir, "best.json"), best)
    image_io.atomic_write(os.path.join(workdir, "best_genotype.txt"),
                          lambda f: f.write((best["name"] + "\n").encode()))
  rewards = history["reward"].reshape(-1, batch)
  files.line_plot(os.path.join(workdir, "reward.png"), {
      "mean reward per step": rewards.mean(axis=1),
      "best so far": np.maximum.accumulate(rewards.max(axis=1)),
      "baseline": history["baseline"]}, "controller step", "reward (PSNR, dB)",
      f"{config.sampler} search, {config.task}")
  return best


def _final_run(config, best, workdir) -> dict:
  """The best genotype restores config.image (`_final_problem`) for config.final_steps or t*
  steps with the search's fit settings, from key `seed` as a restore run's; writes workdir's
  images, PSNR plot and summary.json."""
  path, spec, problem = _final_problem(config)
  steps = config.final_steps or best["t_star"]
  os.makedirs(workdir, exist_ok=True)
  result = genotype_fit.fit_genotypes(config, spec, [gt.from_name(best["name"])], [problem],
                                      cohort.seed_keys(config.seed, 1), steps,
                                      os.path.join(workdir, "cohort"))
  summary = {"task": config.task, "image": os.path.basename(path), "image_path": path,
             "genotype": best["name"], "steps": steps,
             **common.write_restoration(workdir, spec, problem, result, 0,
                                        f"{config.task} {os.path.basename(path)}"),
             **common.device_info()}
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def _final_problem(config):
  """(path, spec, problem) of the final run: config.image uncropped but for the multiple of 32."""
  return common.load_image_problem(config, config.image, 0, common.CROP_MULTIPLE, "")


def check(config):
  """Everything `run` checks before it writes or compiles (the fields, the training images,
  the prefilter metric's size, the final run's image): UserError on bad input; returns
  (training image names, spec, problems)."""
  _check_config(config)
  image_names, spec, problems = load_train_problems(config)
  if config.prefilter_metric:  # scored on the first training image
    common.check_metric_sizes([config.prefilter_metric], problems[0])
  if config.final_run:
    _final_problem(config)
  return image_names, spec, problems


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Searches for config.num_controller_steps steps (resuming a killed run), then restores
  config.image with the best genotype for t* steps."""
  t_start = time.perf_counter()
  image_names, spec, problems = check(config)
  decisions = _decisions(config)
  rcfg = _reinforce_config(config)
  # fields missing from an older workdir's config count as their defaults
  common.check_rerun(workdir, config.to_dict(), ("num_controller_steps", "final_run",
                                                 "final_steps"), base_config().to_dict())
  files.make_workdir(workdir)
  files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  total = config.num_controller_steps
  progress.say(f"{config.sampler} search: {total} steps of {config.samples_per_step} samples, "
               f"each fitted to {len(problems)} training image(s) for {config.num_steps} steps")
  bar = progress.Progress(total, f"{config.sampler} search", "controller step")
  with jax.default_matmul_precision(config.matmul_precision):
    reward_fn = DipReward(config, spec, problems, workdir)

    def on_step(history):
      best = _write_reports(workdir, config, history, decisions, reward_fn)
      bar.update(len(history["baseline"]), best_reward=best.get("reward", float("nan")))

    history = reinforce.search(decisions, rcfg, reward_fn, total, workdir, config.seed, on_step)
    bar.close()
    best = _write_reports(workdir, config, history, decisions, reward_fn)
  status = np.bincount(history["status"], minlength=len(reinforce.STATUSES))
  summary = {
      "task": config.task, "sampler": config.sampler, "network": reward_fn.network,
      "train_images": image_names,
      "crop_size": config.crop_size, "controller_steps": len(history["baseline"]),
      "samples": int(len(history["reward"])),
      **{f"num_{s}": int(n) for s, n in zip(reinforce.STATUSES, status)},
      "best": best, "psnr_input_train": reward_fn.psnr_input,
      "mean_reward_first_step": float(history["reward"][:config.samples_per_step].mean()),
      "mean_reward_last_step": float(history["reward"][-config.samples_per_step:].mean()),
      "evaluations_this_run": reward_fn.evaluated,
      "evaluations_per_hour": reward_fn.evaluations_per_hour(), **common.device_info()}
  if config.final_run and best:
    with jax.default_matmul_precision(config.matmul_precision):
      final = _final_run(config, best, os.path.join(workdir, "final"))
    summary.update(image=final["image"], genotype=best["name"], t_star=best["t_star"],
                   psnr_final=final["psnr_final"], psnr_best=final["psnr_best"],
                   ssim_final=final["ssim_final"], best_step=final["best_step"],
                   restored=final["restored"])
  summary["wall_seconds"] = time.perf_counter() - t_start
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
