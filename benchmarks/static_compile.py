"""Compile seconds of one static genotype's DIP training step (what an ISNAS cohort on CPU pays
per member, `runs.genotype_fit`) at several widths: the first candidates of the ISNAS list
sampled by the ISNAS run's own rule (`candidates.candidate_genotypes`, config.candidates =
"sample"), denoising an RGB image, the ISNAS recipe (EMA 0.99).

    python benchmarks/static_compile.py [--widths=8,32,128] [--num=3] [--px=64]

Writes benchmarks/results/static_compile_cpu.json and its table in benchmarks/README.md.
"""

import os
import sys
import time

from absl import flags
import jax
import ml_collections
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.fit import dip  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import degrade  # pylint: disable=wrong-import-position
from nasdip_jax.nets import nasdip  # pylint: disable=wrong-import-position
from nasdip_jax.runs import candidates  # pylint: disable=wrong-import-position

_WIDTHS = flags.DEFINE_list("widths", ["8", "32", "128"], "Network widths.")
_NUM = flags.DEFINE_integer("num", 3, "Genotypes per width.", lower_bound=1)
_PX = flags.DEFINE_integer("px", 64, "Image size (px, square).", lower_bound=32)
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
report.int_list(_WIDTHS, lower=4, multiple=4)


def compile_seconds(genotype, width: int, px: int) -> float:
  """Seconds to compile one training step (forward, loss, backward, Adam, EMA) of `genotype`."""
  img = (np.random.default_rng(0).random((px, px, 3)) * 255).astype(np.uint8)
  spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
  cfg = dip.FitConfig(ema_decay=0.99, input_depth=3)
  init_key, data_key = jax.random.split(jax.random.key(0))
  net = nasdip.NasDipNet(3, 3, genotype, width=width, rngs=nnx.Rngs(params=init_key))
  graphdef, params = nnx.split(net, nnx.Param)
  data = dip.init_data(data_key, problem, cfg)
  state = dip.init_state(params, dip.make_optimizer(cfg), problem, cfg)
  step = dip.make_step_fn(graphdef, dip.make_optimizer(cfg), spec, cfg)
  t0 = time.perf_counter()
  dip.compile_fit(step, state, data, 1, "dispatch")
  return time.perf_counter() - t0


def main(argv):
  del argv
  rows = []
  for width in map(int, _WIDTHS.value):
    config = ml_collections.ConfigDict(dict(candidates="sample", num_candidates=_NUM.value,
                                            width=width, seed=_SEED.value))
    names, genotypes, _ = candidates.candidate_genotypes(config)
    for name, genotype in zip(names, genotypes):
      seconds = compile_seconds(genotype, width, _PX.value)
      rows.append({"width": width, "px": _PX.value, "genotype": name,
                   "cell": genotype.cell.describe(), "compile_seconds": seconds})
      print(rows[-1], flush=True)
  for width in map(int, _WIDTHS.value):
    mine = [r["compile_seconds"] for r in rows if r["width"] == width]
    rows.append({"width": width, "px": _PX.value, "genotype": "mean", "cell": "",
                 "compile_seconds": float(np.mean(mine))})
  result = {"machine": report.machine(), "rows": rows}
  report.write_json(os.path.join(report.RESULTS, "static_compile_cpu.json"), result)
  report.update_readme_table("static_compile_cpu", result["machine"], rows,
                             ["width", "px", "genotype", "cell", "compile_seconds"])


if __name__ == "__main__":
  report.run(main)
