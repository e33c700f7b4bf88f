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

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.report import files
from nasdip_jax.report import progress
from nasdip_jax.runs import candidates
from nasdip_jax.runs import common
from nasdip_jax.runs import genotype_fit
from nasdip_jax.search import isnas

FINAL_MODELS = ("selected", "reference_last_ranked")
# what a rerun on a workdir may change: the rankings (each metric has its own folder; the table
# scores every metric) and the threads scoring (scores do not depend on them)
RERUN_MAY_CHANGE = ("rank_by", "score_threads")


def base_config() -> ml_collections.ConfigDict:
  """Every field of an ISNAS run; configs/isnas_*.py set the reference recipes."""
  c = ml_collections.ConfigDict()
  c.run = "isnas"
  common.degradation_fields(c)    # seed: also the scoring inits and cohort inits
  common.image_fields(c)
  candidates.candidate_fields(c)
  c.top_n = 15
  c.resize_short_side = 64        # train the cohort resized (the reference's --small); 0 = full
  common.fit_fields(c)
  c.input_depth = 0               # 0 = the image's channels (the reference's choice)
  c.ema_decay = 0.99
  c.num_steps = 1200
  c.final_steps = 0               # 0 = num_steps
  c.final_model = "selected"      # or reference_last_ranked (the reference's bug, see README)
  c.network = "auto"              # static | dynamic | auto (static on CPU), see runs.genotype_fit
  common.execution_fields(c)
  return c


def _check_config(config) -> None:
  common.check_degradation(config, common.SEARCH_TASKS)
  candidates.check_candidates(config)
  common.check_choice(config, "final_model", FINAL_MODELS)
  common.check_at_least(config, ["top_n", "num_steps"])
  common.check_at_least(config, ["crop_size", "final_steps"], 0)
  common.check_fit(config, "nasdip", min_input_depth=0)
  common.check_execution(config)
  if config.top_n > config.num_candidates:
    raise UserError("config.top_n must not exceed config.num_candidates")
  if config.task == "sr" and config.resize_short_side:
    raise UserError("resized training is for denoising and inpainting (the reference trains SR "
                    "at full size); set config.resize_short_side=0")
  genotype_fit.resolve_network(config.network)


def _slug(metric: str) -> str:
  return metric.replace(" ", "_")


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
  h, w = small.clean.shape[1:3]
  progress.say(f"{metric}: training its top {len(top)} for {config.num_steps} steps at {w}x{h} "
               f"({genotype_fit.resolve_network(config.network)} networks)...")
  result = genotype_fit.fit_genotypes(config, spec, top, [small], keys, config.num_steps,
                                      os.path.join(out, "cohort"))
  y = spec.task == "sr" and problem.observation.shape[-1] == 3
  chosen, to_avg, average = isnas.closest_to_average(result.final, values[order, col], y)
  weights = isnas.averaging_weights(values[order, col])
  files.write_csv(os.path.join(out, "cohort.csv"),
                  ["rank", "name", "metric", "weight", "psnr_final", "ssim_final", "psnr_best",
                   "psnr_to_average"],
                  [[r, names[i], float(values[i, col]), float(weights[r]),
                    float(result.curves["psnr"][r, -1]),
                    degrade.structural(spec, small.clean[0], result.final[r]),
                    float(result.best_psnr[r]), float(to_avg[r])] for r, i in enumerate(order)])
  for r in range(len(order)):
    image_io.save_png(os.path.join(out, f"member_{r:02d}.png"), result.final[r])
  image_io.save_png(os.path.join(out, "average.png"), average)
  final_rank = chosen if config.final_model == "selected" else len(order) - 1
  final_idx = int(order[final_rank])
  image_io.atomic_write(os.path.join(out, "selected.txt"),
                        lambda f: f.write((names[order[chosen]] + "\n").encode()))
  final_key = jax.random.fold_in(jax.random.key(config.seed), 2)
  progress.say(f"{metric}: selected {names[order[chosen]]}; training {names[final_idx]} at "
               "full size...")
  final = genotype_fit.fit_genotypes(config, spec, [genotypes[final_idx]], [problem],
                                     final_key[None],
                                     config.final_steps or config.num_steps,
                                     os.path.join(out, "final"))
  restored = common.write_restoration(out, spec, problem, final, 0,
                                      f"ISNAS {metric}: {names[final_idx]}")
  return {"selected": names[order[chosen]], "selected_rank": int(chosen),
          "final_model": names[final_idx], "top_n": [names[i] for i in order], **restored,
          "cohort_psnr_final": result.curves["psnr"][:, -1].tolist(),
          "cohort_image_size": list(small.clean.shape[1:3])}, {
              "cohort": _timing(result.info), "final": _timing(final.info)}


def _timing(info: dict) -> dict:
  """A fit's seconds: compiling, fitting (the members trained now) and in all."""
  return {k: info.get(k) for k in ("members", "resumed_members", "compile_seconds",
                                   "fit_seconds", "wall_seconds", "member_steps_per_sec")}


def check(config):
  """Everything `run` checks before it writes or compiles (the fields, the image, the metrics'
  sizes, the candidates): UserError on bad input; returns (path, spec, problem, names,
  genotypes, unbuildable ones skipped)."""
  _check_config(config)
  path, spec, problem = common.load_problem(config)
  common.check_metric_sizes(config.table_metrics, problem)
  names, genotypes, skipped = candidates.candidate_genotypes(config)
  if len(genotypes) < config.top_n:
    raise UserError(f"only {len(genotypes)} buildable candidates for top_n={config.top_n}")
  return path, spec, problem, names, genotypes, skipped


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs ISNAS-DIP on config.image for each metric of config.rank_by."""
  t_start = time.perf_counter()
  path, spec, problem, names, genotypes, skipped = check(config)
  common.check_rerun(workdir, config.to_dict(), RERUN_MAY_CHANGE)
  files.make_workdir(workdir)
  files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  image_io.save_png(os.path.join(workdir, "corrupted.png"), problem.observation[0])
  image_io.save_png(os.path.join(workdir, "clean.png"), problem.clean[0])
  with jax.default_matmul_precision(config.matmul_precision):
    values, score_timing = candidates.score(config, spec, problem, genotypes, workdir)
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
      "psnr_input": degrade.quality(spec, problem.clean[0], baseline),
      "ssim_input": degrade.structural(spec, problem.clean[0], baseline), "metrics": per_metric,
      "timing": {"score": score_timing, "rankings": {m: s[1] for m, s in selections.items()},
                 "wall_seconds": time.perf_counter() - t_start},
      **common.device_info()}
  first = per_metric[config.rank_by[0]]
  summary.update(psnr_final=first["psnr_final"], psnr_best=first["psnr_best"],
                 ssim_final=first["ssim_final"], ssim_best=first["ssim_best"],
                 restored=first["restored"],
                 selected=first["selected"])
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
