"""Forward passes of random NAS-DIP genotypes in the dynamic mode: compilations, wall time and
candidates per second; a few static-mode candidates (one compilation each) for comparison.

    python benchmarks/space_scan.py [--num=1000] [--px=64] [--width=128] [--static=3]

Each candidate gets a fresh PyTorch-style init (jitted, inside the same program family) and one
forward pass of a 1-channel z = 0.1 U[0,1) at px x px. Writes
benchmarks/results/space_scan_<backend>_<px>px.json and the table in benchmarks/README.md.
"""

import collections
import os
import sys
import time

from absl import flags
import jax
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax import compilations  # pylint: disable=wrong-import-position
from nasdip_jax.nets import dynamic  # pylint: disable=wrong-import-position
from nasdip_jax.nets import nasdip  # pylint: disable=wrong-import-position
from nasdip_jax.space import codec  # pylint: disable=wrong-import-position
from nasdip_jax.space import genotype as gt  # pylint: disable=wrong-import-position

_NUM = flags.DEFINE_integer("num", 1000, "Random genotypes to run.", lower_bound=1)
_PX = flags.DEFINE_integer("px", 64, "Image size (a multiple of 32).", lower_bound=32)
_WIDTH = flags.DEFINE_integer("width", 128, "Network width (the paper's is 128).", lower_bound=1)
_STATIC = flags.DEFINE_integer("static", 3, "Static-mode candidates timed for comparison.",
                               lower_bound=0)
flags.register_validator(_PX, lambda v: v % 32 == 0, "--px must be a multiple of 32")


def main(argv):
  del argv
  width, px = _WIDTH.value, _PX.value
  keys = jax.random.split(jax.random.key(0), _NUM.value)
  genotypes = [gt.sample(k, gt.Space.reference(width)) for k in keys]
  codes = [codec.encode(g, width) for g in genotypes]
  z = jax.random.uniform(jax.random.key(1), (1, px, px, 1)) * 0.1
  graphdef = nnx.graphdef(nnx.eval_shape(
      lambda: dynamic.DynamicNasDipNet(1, 1, width=width, rngs=nnx.Rngs(0))))

  @jax.jit
  def init(key, code):
    return nnx.state(dynamic.DynamicNasDipNet(1, 1, width=width, code=code, rngs=nnx.Rngs(key)))

  @jax.jit
  def forward(state, code):
    return nnx.merge(graphdef, state)(z, code)

  with compilations.counting() as compiled:
    t0 = time.perf_counter()
    jax.block_until_ready(forward(init(keys[0], codes[0]), codes[0]))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = []
    for key, code in zip(keys, codes):
      outs.append(forward(init(key, code), code))
    outs = np.stack(jax.device_get(outs))
    wall = time.perf_counter() - t0
  assert np.all(np.isfinite(outs))
  static_seconds = []
  for g, key in zip(genotypes[:_STATIC.value], keys):
    t = time.perf_counter()
    net = nasdip.NasDipNet(1, 1, g, width=width, rngs=nnx.Rngs(key))
    gd, state = nnx.split(net)
    jax.block_until_ready(jax.jit(lambda s: nnx.merge(gd, s)(z))(state))
    static_seconds.append(time.perf_counter() - t)
  row = {"px": px, "width": width, "candidates": _NUM.value,
         "compilations": compiled.n,
         "compile_seconds": compile_seconds, "wall_seconds": wall,
         "candidates_per_sec": _NUM.value / wall,
         "static_seconds_per_candidate": float(np.mean(static_seconds)) if static_seconds else None,
         "kinds": dict(collections.Counter(str(codec.cell_kind(g.cell)) for g in genotypes))}
  print(row, flush=True)
  name = f"space_scan_{jax.default_backend()}_{px}px"
  result = {"machine": report.machine(), "rows": [row]}
  report.write_json(os.path.join(report.RESULTS, name + ".json"), result)
  report.update_readme_table(name, result["machine"], [row],
                             ["px", "width", "candidates", "compilations", "compile_seconds",
                              "wall_seconds", "candidates_per_sec",
                              "static_seconds_per_candidate"])


if __name__ == "__main__":
  report.run(main)
