"""Wall time of ISNAS-DIP: its training-free scoring, and the whole pipeline on one image.

    python benchmarks/isnas_speed.py [--sizes=64,256] [--num=1000,200] [--devices=1,2]
        [--threads=1,2] [--chains=used,all]
    python benchmarks/isnas_speed.py --pipeline=resized [--image=Set12/01.png]
        [--num_candidates=5000] [--steps=1200]

Scoring (the default): N candidates of the 5000-list (unbuildable ones skipped) at the paper's
width, one random output each, every table metric, grayscale denoising. Reports candidates per
second, the extrapolated time for 5000, and the number of compilations for each size, number
of scoring devices, candidates in flight per device (`threads`, as `search.isnas.score_all`)
and `chains` (the scorer runs only the upward chains a candidate uses, or all). One set of
programs per device serves every genotype; on CPU, --devices sets jax_num_cpu_devices to its
largest value. The first row of each size and `chains` compiles; the others reuse its programs
(device 0's). `total_minutes` is compilation plus scoring of the row's candidates. Writes
benchmarks/results/isnas_speed_<backend>.json (or --out, its table named after the file).

--pipeline=resized | full: configs/isnas_denoise.py on one grayscale image, ranked by
`psd db strip mse` alone (the paper's timing: one cohort of 15), its cohort trained resized to
short side 64 or at full size: scoring, the cohort, the selection and the final full-size run,
in a fresh process and workdir, compilation included. Fewer candidates or steps than the paper's
(for a CPU) are extrapolated to 5000 candidates and 1200 steps from the measured rates, each
stage's compilation and overhead kept as measured. Writes (one row per pipeline and image)
benchmarks/results/isnas_pipeline_<backend>.json.
Both refresh their table in benchmarks/README.md.
"""

import importlib.util
import itertools
import json
import os
import sys
import tempfile
import time

from absl import flags
import jax
import ml_collections
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import degrade  # pylint: disable=wrong-import-position
from nasdip_jax import compilations  # pylint: disable=wrong-import-position
from nasdip_jax.runs import candidates  # pylint: disable=wrong-import-position
from nasdip_jax.runs import genotype_fit  # pylint: disable=wrong-import-position
from nasdip_jax.runs import isnas as isnas_run  # pylint: disable=wrong-import-position
from nasdip_jax.search import isnas  # pylint: disable=wrong-import-position
from nasdip_jax.space import codec  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["64", "256"], "Image sizes (px, square, grayscale).")
_NUM = flags.DEFINE_list("num", ["1000", "200"], "Candidates per size (same order as sizes).")
_DEVICES = flags.DEFINE_list("devices", ["1", "2"], "Numbers of local devices to score on.")
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Candidates in flight per device.")
_CHAINS = flags.DEFINE_list("chains", ["used"], "Upward chains the scorer runs: used, all.")
_WIDTH = flags.DEFINE_integer("width", 128, "Network width (the paper's is 128).", lower_bound=1)
_PRNG = flags.DEFINE_enum("init_prng", "hash32", isnas.INIT_PRNGS, "The candidates' init draws.")
_OUT = flags.DEFINE_string("out", None, "JSON path (default benchmarks/results/...).")
_PIPELINE = flags.DEFINE_enum("pipeline", None, ["resized", "full"],
                              "Time the whole pipeline, its cohort trained resized or full size.")
_DATA = flags.DEFINE_string("data", os.path.join(os.path.dirname(report.HERE), "..", "shared",
                                                 "data"), "The test-set folder.")
_IMAGE = flags.DEFINE_string("image", "Set12/01.png", "The pipeline's image, under --data.")
_CANDIDATES = flags.DEFINE_integer("num_candidates", 5000, "Of the 5000-list (the paper's 5000).",
                                   lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 1200, "Steps of each cohort member and the final run.",
                              lower_bound=1)
report.int_list(_SIZES, lower=32, multiple=32)
report.same_length(_SIZES, _NUM)
for _holder in (_NUM, _DEVICES, _THREADS):
  report.int_list(_holder)
report.choice_list(_CHAINS, isnas.CHAINS)

CONFIG = os.path.join(os.path.dirname(report.HERE), "configs", "isnas_denoise.py")
PAPER_CANDIDATES, PAPER_STEPS = 5000, 1200
RANKING = "psd db strip mse"


def scoring():
  jax.config.update("jax_num_cpu_devices", max(map(int, _DEVICES.value)))
  jax.config.update("jax_default_matmul_precision", "highest")  # the runs' setting
  config = isnas_run.base_config()
  _, genotypes, _ = candidates.candidate_genotypes(config)
  metric_names = tuple(config.table_metrics)
  rows = []
  for (px, num), chains, devices, threads in itertools.product(
      zip(map(int, _SIZES.value), map(int, _NUM.value)), _CHAINS.value,
      map(int, _DEVICES.value), map(int, _THREADS.value)):
    img = (np.random.default_rng(0).random((px, px, 1)) * 255).astype(np.uint8)
    spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
    scorer = isnas.make_scorer(spec, problem.observation, (px, px), _WIDTH.value, metric_names,
                               init_prng=_PRNG.value, devices=jax.local_devices()[:devices],
                               chains=chains)
    codes = [codec.encode(g, _WIDTH.value) for g in genotypes[:num]]
    with compilations.counting() as compiled:  # programs shared with earlier sizes' scorers
      t0 = time.perf_counter()
      jax.block_until_ready(scorer(jax.random.key(0), codes[0]))
      compile_seconds = time.perf_counter() - t0
      t0 = time.perf_counter()
      keys = [jax.random.key(i) for i in range(len(codes))]
      values = np.stack(isnas.score_all(scorer, keys, codes, devices * threads))
      wall = time.perf_counter() - t0
    assert np.all(np.isfinite(values[:, :2]))
    row = {"px": px, "width": _WIDTH.value, "chains": chains, "devices": devices,
           "threads": threads,
           "init_prng": _PRNG.value, "candidates": len(codes), "metrics": len(metric_names),
           "compilations": compiled.n,
           "compile_seconds": compile_seconds, "wall_seconds": wall,
           "candidates_per_sec": len(codes) / wall,
           "minutes_for_5000": 5000 / (len(codes) / wall) / 60,
           "total_minutes": (compile_seconds + wall) / 60}
    rows.append(row)
    print(row, flush=True)
  result = {"machine": report.machine(), "rows": rows}
  out = _OUT.value or os.path.join(report.RESULTS, f"isnas_speed_{jax.default_backend()}.json")
  report.write_json(out, result)
  report.update_readme_table(os.path.splitext(os.path.basename(out))[0], result["machine"], rows,
                             ["px", "width", "chains", "devices", "threads", "init_prng",
                              "candidates",
                              "compilations", "compile_seconds", "wall_seconds",
                              "candidates_per_sec", "minutes_for_5000", "total_minutes"])


def _pipeline_config():
  spec = importlib.util.spec_from_file_location("isnas_denoise", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.update(image=os.path.join(_DATA.value, _IMAGE.value), channels="gray",
                rank_by=(RANKING,), num_candidates=_CANDIDATES.value, num_steps=_STEPS.value,
                resize_short_side=config.resize_short_side if _PIPELINE.value == "resized" else 0)
  return config


def _paper_scale(timing, paper_scored: int, top_n: int) -> dict:
  """Minutes of each stage at 5000 candidates and 1200 steps: the measured fitting (scoring
  after its first call) scaled by the measured rate; compilation and overhead as measured."""
  score = timing["score"]
  fits = timing["rankings"][RANKING]
  est = {"score": score["first_call_seconds"] + (paper_scored - 1) / score["candidates_per_sec"]}
  for fit, members in (("cohort", top_n), ("final", 1)):
    t = fits[fit]
    est[fit] = t["wall_seconds"] - t["fit_seconds"] + members * PAPER_STEPS / t[
        "member_steps_per_sec"]
  est["other"] = timing["wall_seconds"] - score["seconds"] - sum(
      fits[f]["wall_seconds"] for f in ("cohort", "final"))
  est = {k: v / 60 for k, v in est.items()}
  est["total"] = sum(est.values())
  return est


def pipeline():
  config = _pipeline_config()
  if config.cpu_devices:  # as main.py
    jax.config.update("jax_num_cpu_devices", config.cpu_devices)
  paper = ml_collections.ConfigDict(config.to_dict())
  paper.num_candidates = PAPER_CANDIDATES
  paper_scored = len(candidates.candidate_genotypes(paper)[1])
  with tempfile.TemporaryDirectory() as workdir:
    summary = isnas_run.run(config, workdir)
  timing = summary["timing"]
  fits = timing["rankings"][RANKING]
  est = _paper_scale(timing, paper_scored, config.top_n)
  row = {"pipeline": _PIPELINE.value, "image": _IMAGE.value,
         "px": "x".join(map(str, summary["image_size"])),
         "cohort_px": "x".join(map(str, summary["metrics"][RANKING]["cohort_image_size"])),
         "network": genotype_fit.resolve_network(config.network),
         "scored": timing["score"]["scored"], "top_n": config.top_n, "steps": config.num_steps,
         "score_min": timing["score"]["seconds"] / 60,
         "cohort_min": fits["cohort"]["wall_seconds"] / 60,
         "final_min": fits["final"]["wall_seconds"] / 60, "wall_min": timing["wall_seconds"] / 60,
         **{f"paper_{k}_min": v for k, v in est.items()},
         "psnr_final": summary["psnr_final"], "timing": timing}
  print(json.dumps(row, indent=1), flush=True)
  name = f"isnas_pipeline_{jax.default_backend()}"
  path = _OUT.value or os.path.join(report.RESULTS, name + ".json")
  rows = []
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      rows = [r for r in json.load(f)["rows"]
              if (r["pipeline"], r["image"]) != (row["pipeline"], row["image"])]
  rows = sorted(rows + [row], key=lambda r: (r["image"], r["pipeline"] != "resized"))
  result = {"machine": report.machine(), "paper_scale": {
      "candidates": PAPER_CANDIDATES, "scored": paper_scored, "steps": PAPER_STEPS}, "rows": rows}
  report.write_json(path, result)
  report.update_readme_table(name, result["machine"], rows, [
      "pipeline", "image", "px", "cohort_px", "scored", "top_n", "steps", "score_min",
      "cohort_min", "final_min", "wall_min", "paper_score_min", "paper_cohort_min",
      "paper_final_min", "paper_total_min"])


def main(argv):
  del argv
  if _PIPELINE.value:
    pipeline()
  else:
    scoring()


if __name__ == "__main__":
  report.run(main)
