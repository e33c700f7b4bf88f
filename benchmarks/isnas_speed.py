"""Wall time of ISNAS-DIP's training-free scoring: N candidates of the 5000-list (unbuildable ones
skipped) at the paper's width, one random output each, every table metric, grayscale denoising.

    python benchmarks/isnas_speed.py [--sizes=64,256] [--num=1000,5000] [--devices=1,2]

Reports candidates per second, the extrapolated time for 5000, and the number of compilations
for each size and number of scoring devices (one set of programs per device serves every
genotype; on CPU, --devices sets jax_num_cpu_devices to its largest value). Writes
benchmarks/results/isnas_speed_<backend>.json and the table in benchmarks/README.md.
"""

import itertools
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import degrade  # pylint: disable=wrong-import-position
from nasdip_jax.nets import dynamic  # pylint: disable=wrong-import-position
from nasdip_jax.runs import isnas as isnas_run  # pylint: disable=wrong-import-position
from nasdip_jax.search import isnas  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["64", "256"], "Image sizes (px, square, grayscale).")
_NUM = flags.DEFINE_list("num", ["1000", "200"], "Candidates per size (same order as sizes).")
_DEVICES = flags.DEFINE_list("devices", ["1", "2"], "Numbers of local devices to score on.")
_WIDTH = flags.DEFINE_integer("width", 128, "Network width (the paper's is 128).")
_PRNG = flags.DEFINE_string("init_prng", "hash32", "The candidates' init draws.")
_OUT = flags.DEFINE_string("out", None, "JSON path (default benchmarks/results/...).")


def main(argv):
  del argv
  jax.config.update("jax_num_cpu_devices", max(map(int, _DEVICES.value)))
  jax.config.update("jax_default_matmul_precision", "highest")  # the runs' setting
  config = isnas_run.base_config()
  _, genotypes, _ = isnas_run.candidate_genotypes(config)
  metric_names = tuple(config.table_metrics)
  rows = []
  for (px, num), devices in itertools.product(zip(map(int, _SIZES.value), map(int, _NUM.value)),
                                              map(int, _DEVICES.value)):
    img = (np.random.default_rng(0).random((px, px, 1)) * 255).astype(np.uint8)
    spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
    scorer = isnas.make_scorer(spec, problem.observation, (px, px), _WIDTH.value, metric_names,
                               init_prng=_PRNG.value, devices=jax.local_devices()[:devices])
    codes = [dynamic.encode(g, _WIDTH.value) for g in genotypes[:num]]
    compiled_before = scorer._cache_size()  # programs shared with the previous sizes' scorers
    t0 = time.perf_counter()
    jax.block_until_ready(scorer(jax.random.key(0), codes[0]))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = [scorer(jax.random.key(i), c) for i, c in enumerate(codes)]
    values = np.stack(jax.device_get(out))
    wall = time.perf_counter() - t0
    assert np.all(np.isfinite(values[:, :2]))
    row = {"px": px, "width": _WIDTH.value, "devices": devices, "init_prng": _PRNG.value,
           "candidates": num, "metrics": len(metric_names),
           "compilations": scorer._cache_size() - compiled_before,
           "compile_seconds": compile_seconds, "wall_seconds": wall, "candidates_per_sec": num / wall,
           "minutes_for_5000": 5000 / (num / wall) / 60}
    rows.append(row)
    print(row, flush=True)
  result = {"machine": report.machine(), "rows": rows}
  out = _OUT.value or os.path.join(report.RESULTS, f"isnas_speed_{jax.default_backend()}.json")
  report.write_json(out, result)
  report.update_readme_table(f"isnas_speed_{jax.default_backend()}", result["machine"], rows,
                             ["px", "width", "devices", "init_prng", "candidates",
                              "compilations", "compile_seconds",
                              "wall_seconds", "candidates_per_sec", "minutes_for_5000"])


if __name__ == "__main__":
  app.run(main)
