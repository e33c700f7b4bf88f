"""ISNAS-DIP on one image: score candidates training-free, train each metric's top N as a cohort,
select by weighted averaging, retrain the selected genotype at full size.

    from nasdip_jax.runs import isnas
    summary = isnas.run(config, workdir)   # config from configs/isnas_*.py

Workdir: `metrics.csv` (every candidate's metric values), per ranking metric a folder with the
cohort's outputs and PSNRs (`cohort.csv`, `average.png`, `member_<rank>.png`), the selected
genotype (`selected.txt`) and the final run (`restored.png`, `psnr.png`); `summary.json` (its
`timing`: the seconds of scoring, of each cohort and final run, compilation apart, and in all).
Scoring progress, cohorts and final runs are saved as they finish: rerun to resume.
"""

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.nets import dynamic
from nasdip_jax.report import files
from nasdip_jax.runs import genotype_fit
from nasdip_jax.runs import restore
from nasdip_jax.search import isnas
from nasdip_jax.search import psd_metrics
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import lists

FINAL_MODELS = ("selected", "reference_last_ranked")
# what a rerun on a workdir may change: the rankings (each metric has its own folder; the table
# scores every metric) and the threads scoring (scores do not depend on them)
RERUN_MAY_CHANGE = ("rank_by", "score_threads")
SCORE_SAVE_EVERY = 200


def base_config() -> ml_collections.ConfigDict:
  """Every field of an ISNAS run; configs/isnas_*.py set the reference recipes."""
  c = ml_collections.ConfigDict()
  c.run = "isnas"
  c.task = "denoise"              # denoise | inpaint | sr
  c.image = ""                    # path; "" = the bundled 64-px default image for the task
  c.channels = "rgb"
  c.crop_size = 0
  c.crop_multiple = 32
  c.seed = 0                      # degradation, scoring inits, cohort inits
  c.sigma = 25.0
  c.keep_fraction = 0.5
  c.mask = ""                     # inpaint: a mask file instead of Bernoulli (see restore)
  c.factor = 4
  c.candidates = "isnas_candidates_5000"  # a shipped list (space/lists.py), or "sample"
  c.num_candidates = 5000         # the list's first N (unbuildable ones skipped) / N samples
  c.width = 128                   # channels of every NAS-DIP network
  c.num_outputs = 1               # random outputs per init (input noises) ...
  c.num_inits = 1                 # ... of this many inits per candidate; metrics averaged
  c.init_prng = "hash32"          # the candidates' init draws: hash32 | threefry2x32 | philox4x32
  c.score_devices = 0             # local devices scoring candidates concurrently (0 = all)
  c.score_threads = 0             # candidates in flight per scoring device (0 = 2 on CPU, else 1)
  c.cpu_devices = 0               # CPU devices main.py has JAX make (0 = JAX's default, one)
  c.table_metrics = (psd_metrics.SIMILARITY_METRICS + psd_metrics.LOWPASS_METRICS
                     + psd_metrics.CORRECTED_METRICS + (psd_metrics.RANDOM_METRIC,))
  c.rank_by = psd_metrics.ISNAS_METRICS + (psd_metrics.RANDOM_METRIC,)
  c.top_n = 15
  c.resize_short_side = 64        # train the cohort resized (the reference's --small); 0 = full
  c.input_depth = 0               # 0 = the image's channels (the reference's choice)
  c.num_steps = 1200
  c.final_steps = 0               # 0 = num_steps
  c.lr = 0.01
  c.reg_noise_std = 1.0 / 30.0
  c.ema_decay = 0.99
  c.final_model = "selected"      # or reference_last_ranked (the reference's bug, see README)
  c.network = "auto"              # static | dynamic | auto (static on CPU), see runs.genotype_fit
  c.execution = "auto"
  c.num_devices = 0
  c.steps_per_call = 50
  c.loop = "auto"
  c.memory_limit_mb = 0
  c.checkpoint_every = 500
  c.matmul_precision = "highest"
  return c


def _check_config(config) -> None:
  if config.task not in degrade.TASKS:
    raise UserError(f"config.task must be one of {degrade.TASKS}, got {config.task!r}")
  if config.candidates != "sample" and config.candidates not in lists.FILES:
    raise UserError(f"config.candidates must be 'sample' or one of {sorted(lists.FILES)}")
  if config.final_model not in FINAL_MODELS:
    raise UserError(f"config.final_model must be one of {FINAL_MODELS}")
  for name in tuple(config.table_metrics) + tuple(config.rank_by):
    try:
      psd_metrics.parse(name)
    except ValueError as e:
      raise UserError(str(e)) from None
  missing = [m for m in config.rank_by if m not in config.table_metrics]
  if missing:
    raise UserError(f"config.rank_by metrics {missing} are not in config.table_metrics")
  for name in ("num_candidates", "top_n", "num_steps", "num_outputs", "num_inits", "width"):
    if config[name] < 1:
      raise UserError(f"config.{name} must be >= 1, got {config[name]}")
  if config.init_prng not in isnas.INIT_PRNGS:
    raise UserError(f"config.init_prng must be one of {isnas.INIT_PRNGS}, got "
                    f"{config.init_prng!r}")
  score_devices(config)
  if config.score_threads < 0:
    raise UserError(f"config.score_threads must be >= 0, got {config.score_threads}")
  if config.top_n > config.num_candidates:
    raise UserError("config.top_n must not exceed config.num_candidates")
  if config.task == "sr" and config.resize_short_side:
    raise UserError("resized training is for denoising and inpainting (the reference trains SR "
                    "at full size); set config.resize_short_side=0")
  cohort.resolve_execution(config.execution)
  genotype_fit.resolve_network(config.network)


def score_devices(config) -> list:
  """The local devices that score candidates (config.score_devices of them; 0 = all)."""
  devices = jax.local_devices()
  if not 0 <= config.score_devices <= len(devices):
    raise UserError(f"config.score_devices must be in 0..{len(devices)} (the local devices), "
                    f"got {config.score_devices}")
  return devices[:config.score_devices or len(devices)]


def score_threads(config, devices) -> int:
  """Candidates scored at once: config.score_threads per device (0: two on CPU, where two
  concurrent candidates fill the cores better than one, and one elsewhere)."""
  per_device = config.score_threads or (2 if devices[0].platform == "cpu" else 1)
  return per_device * len(devices)


def check_metric_sizes(names, problem: degrade.Problem) -> None:
  """UserError if a metric of `names` cannot be computed on the problem's observation."""
  try:
    psd_metrics.check_size(names, *problem.observation.shape[1:3])
  except ValueError as e:
    raise UserError(str(e)) from None


def candidate_genotypes(config):
  """(names, genotypes) of the buildable candidates and the number skipped as unbuildable."""
  space = gt.Space.reference(config.width)
  if config.candidates == "sample":
    keys = jax.random.split(jax.random.key(config.seed), config.num_candidates)
    genos = [gt.sample(k, space) for k in keys]
    return [gt.to_name(g) for g in genos], genos, 0
  names, genos, skipped = [], [], 0
  for name in lists.names(config.candidates)[:config.num_candidates]:
    g = gt.from_name(name)
    if not gt.is_valid(g, config.width):
      skipped += 1  # the reference logs these to ERRORS.txt and moves on
      continue
    names.append(gt.to_name(g))
    genos.append(g)
  return names, genos, skipped


def score(config, spec, problem, genotypes, workdir) -> tuple:
  """(values (N, M), timing) of every candidate; progress saved in scores.npz, resumed.

  timing: `seconds` of this call, `first_call_seconds` (the first candidate scored here, with
  the programs' compilation), `compilations`, `devices`, `threads` (candidates in flight),
  `scored` (candidates scored here) and `candidates_per_sec` after the first call (None below
  two)."""
  path = os.path.join(workdir, "scores.npz")
  n, metrics_ = len(genotypes), list(config.table_metrics)
  values = np.full((n, len(metrics_)), np.nan)
  done = 0
  if os.path.exists(path):
    with np.load(path) as z:
      if list(z["metrics"]) == metrics_ and z["values"].shape[0] == n:
        values, done = z["values"], int(z["done"])
  h, w = problem.clean.shape[1:3]
  devices = score_devices(config)
  threads = score_threads(config, devices)
  scorer = isnas.make_scorer(spec, problem.observation, (h, w), config.width, metrics_,
                             config.num_outputs, config.num_inits, config.init_prng, devices)
  base = jax.random.key(config.seed)
  t0 = time.perf_counter()
  bar = tqdm(total=n, initial=done, disable=not sys.stderr.isatty(), desc="scoring", unit="cand")
  start, first_seconds = done, 0.0
  # the first candidate alone (its compilation, timed apart), then chunks saved as they finish
  chunks = [(lo, min(lo + SCORE_SAVE_EVERY, n)) for lo in range(done + 1, n, SCORE_SAVE_EVERY)]
  for lo, hi in ([(done, done + 1)] if done < n else []) + chunks:
    keys = [jax.random.fold_in(base, i) for i in range(lo, hi)]
    codes = [dynamic.encode(g, config.width) for g in genotypes[lo:hi]]
    values[lo:hi] = isnas.score_all(scorer, keys, codes, threads)
    if lo == start:
      first_seconds = time.perf_counter() - t0
    done = hi
    image_io.atomic_write(path, lambda f, d=done: np.savez(
        f, values=values, done=d, metrics=np.array(metrics_)))
    bar.update(done - bar.n)
  bar.close()
  seconds, scored = time.perf_counter() - t0, n - start
  return values, {"seconds": seconds, "first_call_seconds": first_seconds,
                  "compilations": scorer._cache_size(), "devices": len(devices),
                  "threads": threads, "scored": scored, "candidates_per_sec":
                      (scored - 1) / (seconds - first_seconds) if scored > 1 else None}


def _slug(metric: str) -> str:
  return metric.replace(" ", "_")


def train_genotypes(config, spec, problem, genotypes, keys, num_steps, workdir):
  """The genotypes fitted to one problem (static or dynamic networks, config.network), keys[i]
  for member i."""
  depth = config.input_depth or problem.observation.shape[-1]
  return genotype_fit.fit_genotypes(config, spec, genotypes, [problem], keys, num_steps, workdir,
                                    depth)


def _select(config, spec, problem, small, names, genotypes, values, metric, workdir) -> tuple:
  """Top N by `metric`, their cohort (fitted to `small`), the averaging selection and the final
  full-size run: (results, seconds of the cohort and of the final run)."""
  out = os.path.join(workdir, _slug(metric))
  os.makedirs(out, exist_ok=True)
  col = list(config.table_metrics).index(metric)
  order = np.argsort(values[:, col], kind="stable")[:config.top_n]
  train_key = jax.random.fold_in(jax.random.key(config.seed), 1)
  keys = jnp.stack([jax.random.fold_in(train_key, int(i)) for i in order])
  top = [genotypes[i] for i in order]
  result = train_genotypes(config, spec, small, top, keys, config.num_steps,
                           os.path.join(out, "cohort"))
  y = spec.task == "sr" and problem.observation.shape[-1] == 3
  chosen, to_avg, average = isnas.closest_to_average(result.final, values[order, col], y)
  weights = isnas.averaging_weights(values[order, col])
  files.write_csv(os.path.join(out, "cohort.csv"),
                  ["rank", "name", "metric", "weight", "psnr_final", "psnr_best",
                   "psnr_to_average"],
                  [[r, names[i], float(values[i, col]), float(weights[r]),
                    float(result.curves["psnr"][r, -1]), float(result.best_psnr[r]),
                    float(to_avg[r])] for r, i in enumerate(order)])
  for r in range(len(order)):
    image_io.save_png(os.path.join(out, f"member_{r:02d}.png"), result.final[r])
  image_io.save_png(os.path.join(out, "average.png"), average)
  final_rank = chosen if config.final_model == "selected" else len(order) - 1
  final_idx = int(order[final_rank])
  image_io.atomic_write(os.path.join(out, "selected.txt"),
                        lambda f: f.write((names[order[chosen]] + "\n").encode()))
  final = train_genotypes(config, spec, problem, [genotypes[final_idx]],
                          jnp.stack([jax.random.fold_in(jax.random.key(config.seed), 2)]),
                          config.final_steps or config.num_steps, os.path.join(out, "final"))
  image_io.save_png(os.path.join(out, "restored.png"), final.final[0])
  image_io.save_png(os.path.join(out, "restored_best.png"), final.best[0])
  files.psnr_curve(os.path.join(out, "psnr.png"), {"PSNR vs ground truth": final.curves["psnr"][0]},
                   int(final.best_step[0]), f"ISNAS {metric}: {names[final_idx]}")
  return {"selected": names[order[chosen]], "selected_rank": int(chosen),
          "final_model": names[final_idx], "top_n": [names[i] for i in order],
          "psnr_final": float(final.curves["psnr"][0, -1]), "psnr_best": float(final.best_psnr[0]),
          "best_step": int(final.best_step[0]),
          "cohort_psnr_final": result.curves["psnr"][:, -1].tolist(),
          "cohort_image_size": list(small.clean.shape[1:3])}, {
              "cohort": _timing(result.info), "final": _timing(final.info)}


def _timing(info: dict) -> dict:
  """A fit's seconds: compiling, fitting (the members trained now) and in all."""
  return {k: info.get(k) for k in ("members", "resumed_members", "compile_seconds",
                                   "fit_seconds", "wall_seconds", "member_steps_per_sec")}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs ISNAS-DIP on config.image for each metric of config.rank_by."""
  t_start = time.perf_counter()
  _check_config(config)
  path, spec, problem = restore.load_problem(config)
  check_metric_sizes(config.table_metrics, problem)
  names, genotypes, skipped = candidate_genotypes(config)
  if len(genotypes) < config.top_n:
    raise UserError(f"only {len(genotypes)} buildable candidates for top_n={config.top_n}")
  saved = os.path.join(workdir, "config.json")
  changed = os.path.exists(saved) and files.changed_settings(
      json.load(open(saved, encoding="utf-8")), config.to_dict(), RERUN_MAY_CHANGE)
  if changed:
    raise UserError(f"{workdir} holds a run with other settings ({', '.join(changed)}); use a "
                    "new --workdir")
  files.make_workdir(workdir)
  files.write_json(saved, config.to_dict())
  image_io.save_png(os.path.join(workdir, "corrupted.png"), problem.observation[0])
  image_io.save_png(os.path.join(workdir, "clean.png"), problem.clean[0])
  with jax.default_matmul_precision(config.matmul_precision):
    values, score_timing = score(config, spec, problem, genotypes, workdir)
    files.write_csv(os.path.join(workdir, "metrics.csv"),
                    ["name", "cell_id", "connections"] + list(config.table_metrics),
                    [[name] + name.split("_") + [float(v) for v in row]
                     for name, row in zip(names, values)])
    small = (isnas.resized_problem(problem, config.resize_short_side)
             if config.resize_short_side else problem)
    selections = {m: _select(config, spec, problem, small, names, genotypes, values, m, workdir)
                  for m in config.rank_by}
  per_metric = {m: s[0] for m, s in selections.items()}
  baseline = degrade.baseline_estimate(spec, problem)
  summary = {
      "task": config.task, "image": os.path.basename(path), "image_path": path,
      "image_size": list(problem.clean.shape[1:3]), "candidates": config.candidates,
      "num_scored": len(genotypes), "num_unbuildable_skipped": skipped,
      "psnr_input": degrade.quality(spec, problem.clean[0], baseline), "metrics": per_metric,
      "timing": {"score": score_timing, "rankings": {m: s[1] for m, s in selections.items()},
                 "wall_seconds": time.perf_counter() - t_start},
      "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend()}
  first = per_metric[config.rank_by[0]]
  summary.update(psnr_final=first["psnr_final"], psnr_best=first["psnr_best"],
                 selected=first["selected"])
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
