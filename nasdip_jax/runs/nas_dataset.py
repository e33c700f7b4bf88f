"""A NAS dataset for DIP (ISNAS-DIP's "NAS Dataset for DIP") and its analysis: train a list of
architectures on a set of images, store every PSNR curve and the training-free metrics, then
measure how well each metric predicts the PSNRs.

    from nasdip_jax.runs import nas_dataset
    summary = nas_dataset.run(config, workdir)   # configs/nas_dataset.py

Per task and image, `<task>/<image>/`: `cohort/` (the trained architectures, saved chunk by chunk:
a killed run loses no finished entry), `scores.npz` (metrics of each architecture's random
outputs), `dataset.npz` (names, PSNR curves, best / final PSNR, metric values), `kendall.csv`
(Kendall's tau-b, scipy, of every metric against the best and the final PSNR), and
`histogram.png` (the paper's Figure 4: best PSNR over the dataset, with the best of the top 5 /
top 15 by `psd db strip mse` and the model the averaging selection picks). `summary.json`
collects the taus and, per metric, the selected model's PSNR and its rank in the dataset.
Rerunning on a finished workdir recomputes only the analysis. A rerun may change the analysis
(`top_ns`, `rank_by`) and add tasks or images; other changed settings are refused (each image's
`config.json` records them), since finished entries would silently mix them.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.stats

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import io as image_io
from nasdip_jax.report import files
from nasdip_jax.runs import candidates
from nasdip_jax.runs import common
from nasdip_jax.runs import genotype_fit
from nasdip_jax.search import isnas

TASKS = ("denoise", "inpaint")
RERUN_MAY_CHANGE = ("top_ns", "rank_by", "tasks", "images")  # the analysis and which images


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.run = "nas_dataset"
  c.images = ()                   # image paths; () = the bundled default image of each task
  c.tasks = TASKS
  common.degradation_fields(c)    # (its task is each of config.tasks in turn)
  del c.task
  c.channels = "gray"
  c.crop_size = 0                 # each image: centre crop to at most this many px per side
  c.crop_multiple = common.CROP_MULTIPLE
  candidates.candidate_fields(c)
  c.candidates = "nas_dataset_522"
  c.num_candidates = 522
  c.num_outputs = 100             # the dataset analysis: one init, 100 input noises
  c.top_ns = (5, 15)              # best-of-top-N for each N; the averaging selection uses the last
  common.fit_fields(c)
  c.input_depth = 0               # 0 = the image's channels (as ISNAS-DIP)
  c.ema_decay = 0.99
  c.num_steps = 4000              # the dataset's 4000 iterations
  c.network = "auto"              # static | dynamic | auto (static on CPU), see runs.genotype_fit
  common.execution_fields(c)
  return c


def _check(config) -> None:
  bad = [t for t in config.tasks if t not in TASKS]
  if bad or not config.tasks:
    raise UserError(f"config.tasks must be a non-empty subset of {TASKS}, got {config.tasks}")
  common.check_degradation_fields(config, tuple(config.tasks))
  candidates.check_candidates(config)
  common.check_at_least(config, ["num_steps"])
  common.check_at_least(config, ["crop_size"], 0)
  common.check_fit(config, "nasdip", min_input_depth=0)
  common.check_execution(config)
  genotype_fit.resolve_network(config.network)
  if not config.top_ns or min(config.top_ns) < 1 or max(config.top_ns) > config.num_candidates:
    raise UserError("config.top_ns must be sizes between 1 and config.num_candidates")


def analyse(names, metric_names, values, best, final, outputs, top_ns, y_channel=False) -> dict:
  """Kendall's tau of each metric against best and final PSNR (negated: lower metric is better,
  so a good metric has a positive tau), best-of-top-N, and the averaging selection's pick."""
  out = {"kendall_best": {}, "kendall_final": {}, "selection": {}}
  order_best = np.argsort(-best, kind="stable")
  rank_of = np.empty(len(best), int)
  rank_of[order_best] = np.arange(1, len(best) + 1)
  for j, m in enumerate(metric_names):
    v = values[:, j]
    ok = np.isfinite(v)
    out["kendall_best"][m] = float(scipy.stats.kendalltau(-v[ok], best[ok]).statistic)
    out["kendall_final"][m] = float(scipy.stats.kendalltau(-v[ok], final[ok]).statistic)
    order = np.argsort(np.where(ok, v, np.inf), kind="stable")
    sel = {f"best_of_top_{n}": float(best[order[:n]].max()) for n in top_ns}
    top = order[:max(top_ns)]
    chosen, _, _ = isnas.closest_to_average(outputs[top], v[top], y_channel)
    pick = int(top[chosen])
    sel.update(selected=names[pick], selected_psnr_best=float(best[pick]),
               selected_psnr_final=float(final[pick]), selected_rank=int(rank_of[pick]))
    out["selection"][m] = sel
  out["dataset_best"] = float(best.max())
  out["dataset_median_best"] = float(np.median(best))
  return out


def _image_name(sub) -> str:
  return os.path.splitext(os.path.basename(sub.image))[0] if sub.image else "default"


def _task_config(config, task, image):
  sub = ml_collections.ConfigDict(config.to_dict())
  sub.task, sub.image, sub.mask = task, image, ""
  return sub


def _settings(sub) -> dict:
  """What one task and image's entries depend on."""
  return {k: v for k, v in sub.to_dict().items() if k not in RERUN_MAY_CHANGE}


def _one(sub, loaded, workdir, names, genotypes) -> dict:
  """One task and image (`sub`: the config with its task and image): scores, training,
  dataset.npz and the analysis; loaded = the image's `common.load_problem`."""
  path, spec, problem = loaded
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, "config.json"), _settings(sub))
  values, score_timing = candidates.score(sub, spec, problem, genotypes, workdir)
  key = jax.random.fold_in(jax.random.key(sub.seed), 1)
  keys = jnp.stack([jax.random.fold_in(key, i) for i in range(len(genotypes))])
  t0 = time.perf_counter()
  result = genotype_fit.fit_genotypes(sub, spec, genotypes, [problem], keys, sub.num_steps,
                                      os.path.join(workdir, "cohort"))
  psnr = result.curves["psnr"]
  best, final = result.best_psnr.astype(np.float64), psnr[:, -1].astype(np.float64)
  image_io.atomic_write(os.path.join(workdir, "dataset.npz"), lambda f: np.savez(
      f, names=np.array(names), psnr=psnr, loss=result.curves["loss"], best=best, final=final,
      best_step=result.best_step, metrics=np.array(sub.table_metrics), values=values))
  y = spec.task == "sr" and problem.observation.shape[-1] == 3
  analysis = analyse(names, list(sub.table_metrics), values, best, final, result.final,
                     tuple(sub.top_ns), y)
  files.write_csv(os.path.join(workdir, "kendall.csv"), ["metric", "tau_best", "tau_final"],
                  [[m, analysis["kendall_best"][m], analysis["kendall_final"][m]]
                   for m in sub.table_metrics])
  metric = sub.rank_by[0]
  sel = analysis["selection"][metric]
  markers = {f"best of top {n}": (sel[f"best_of_top_{n}"], c)
             for n, c in zip(sub.top_ns, ("black", "red", "green"))}
  markers["selected"] = (sel["selected_psnr_best"], "blue")
  files.histogram(os.path.join(workdir, "histogram.png"), best, markers, "best PSNR (dB)",
                  f"{sub.task} {os.path.basename(path)}: {len(names)} architectures, {metric}")
  analysis.update(image=os.path.basename(path), task=sub.task,
                  score_seconds=score_timing["seconds"],
                  train_seconds=time.perf_counter() - t0,
                  member_steps_per_sec=result.info.get("member_steps_per_sec"))
  return analysis


def check(config):
  """Everything `run` checks before it writes or compiles (the fields, every image, the
  metrics' sizes, the architectures): UserError on bad input; returns (names, genotypes, the
  per task and image configs and their loaded problems)."""
  _check(config)
  names, genotypes, skipped = candidates.candidate_genotypes(config)
  if skipped:
    raise UserError(f"{skipped} architectures of the list are unbuildable at width "
                    f"{config.width}")
  subs = [_task_config(config, task, image)
          for task in config.tasks for image in (config.images or ("",))]
  loaded = [common.load_problem(sub) for sub in subs]  # bad input: before any file
  for _, _, problem in loaded:
    common.check_metric_sizes(config.table_metrics, problem)
  entries = [(sub.task, _image_name(sub)) for sub in subs]
  if len(set(entries)) < len(entries):
    raise UserError("config.images has two images of the same file name (each gets "
                    "<task>/<name>/); rename one")
  return names, genotypes, subs, loaded


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Builds (or resumes) the dataset for every task and image, then analyses it."""
  names, genotypes, subs, loaded = check(config)
  dirs = [os.path.join(workdir, sub.task, _image_name(sub)) for sub in subs]
  for sub, d in zip(subs, dirs):
    common.check_rerun(d, sub.to_dict(), RERUN_MAY_CHANGE)
  files.make_workdir(workdir)
  files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  results = []
  with jax.default_matmul_precision(config.matmul_precision):
    for sub, problem, d in zip(subs, loaded, dirs):
      results.append(_one(sub, problem, d, names, genotypes))
  summary = {"architectures": len(names), "candidates": config.candidates,
             "tasks": list(config.tasks), "per_image": results}
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
