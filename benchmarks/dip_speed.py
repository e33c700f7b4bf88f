"""Steps per second of the standard DIP network (2.2M params, RGB denoising recipe) per image size,
JAX against the PyTorch reference, timed interleaved in one process.

    python benchmarks/dip_speed.py [--sizes=64,256,512] [--rounds=3]

Writes benchmarks/results/dip_speed_<backend>.json and the table in benchmarks/README.md.
PyTorch (`pip install -e ".[torch]"`) is optional; without it only JAX is timed.
"""

import json
import os
import statistics
import sys
import time

from absl import flags
import jax
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.fit import dip  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import degrade  # pylint: disable=wrong-import-position
from nasdip_jax.nets import layers  # pylint: disable=wrong-import-position
from nasdip_jax.nets import skip  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["64", "256", "512"], "Image sizes (px, square).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds (the median is kept).",
                               lower_bound=1)
_IMPLS = flags.DEFINE_list("conv_impls", ["auto", "xla"], "JAX convolution implementations.")
_OUT = flags.DEFINE_string("out", None, "JSON path (default benchmarks/results/...).")
report.int_list(_SIZES, lower=32, multiple=32)
report.choice_list(_IMPLS, layers.CONV_IMPLS)

STEPS_PER_ROUND = {64: 20, 128: 8, 256: 3, 512: 1}


def jax_runner(px, conv_impl):
  """A compiled DIP denoising step (EMA, guard) on a random image; returns (run(n), info)."""
  net = skip.SkipNet(conv_impl=conv_impl, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(net, nnx.Param)
  img = (np.random.default_rng(0).random((px, px, 3)) * 255).astype(np.uint8)
  spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
  cfg = dip.FitConfig(ema_decay=0.99, backtrack_db=5.0)
  tx = dip.make_optimizer(cfg)
  data = dip.init_data(jax.random.key(0), problem, cfg)
  state = [dip.init_state(params, tx, problem, cfg)]
  compiled = dip.compile_fit(dip.make_step_fn(graphdef, tx, spec, cfg), state[0], data,
                             STEPS_PER_ROUND.get(px, 1), "auto")

  def run(n):
    state[0], _ = compiled.run(state[0], data, n)
    jax.block_until_ready(state[0])

  return run, {"compile_seconds": compiled.compile_seconds,
               "memory_mib": compiled.memory_bytes / 2**20 if compiled.memory_bytes else None}


def torch_runner(px):
  try:
    from benchmarks import torch_reference  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  step = torch_reference.ReferenceStep(px)

  def run(n):
    for _ in range(n):
      step()

  return run


def timed(run, n):
  t0 = time.perf_counter()
  run(n)
  return n / (time.perf_counter() - t0)


def main(argv):
  del argv
  rows = []
  for px in map(int, _SIZES.value):
    n = STEPS_PER_ROUND.get(px, 1)
    runners = {f"jax_{impl}": jax_runner(px, impl) for impl in _IMPLS.value}
    infos = {k: v[1] for k, v in runners.items()}
    runs = {k: v[0] for k, v in runners.items()}
    ref = torch_runner(px)
    if ref is not None:
      runs["torch"] = ref
    for run in runs.values():
      run(1)  # warm-up
    rates = {k: [] for k in runs}
    for _ in range(_ROUNDS.value):
      for k, run in runs.items():
        rates[k].append(timed(run, n))
    row = {"px": px, "steps_per_round": n, "rounds": _ROUNDS.value}
    for k, v in rates.items():
      row[f"{k}_steps_per_sec"] = statistics.median(v)
      row[f"{k}_all"] = v
    for k, info in infos.items():
      row[f"{k}_compile_seconds"] = info["compile_seconds"]
      row[f"{k}_memory_mib"] = info["memory_mib"]
    if ref is not None:
      for impl in _IMPLS.value:
        row[f"jax_{impl}_vs_torch"] = row[f"jax_{impl}_steps_per_sec"] / row["torch_steps_per_sec"]
    rows.append(row)
    print(json.dumps({k: v for k, v in row.items() if not k.endswith("_all")}), flush=True)
  out = _OUT.value or os.path.join(report.RESULTS, f"dip_speed_{jax.default_backend()}.json")
  if os.path.exists(out):  # keep the other sizes of an earlier run
    measured = {r["px"] for r in rows}
    rows = sorted([r for r in json.load(open(out, encoding="utf-8"))["rows"]
                   if r["px"] not in measured] + rows, key=lambda r: r["px"])
  result = {"machine": report.machine(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "loop": dip.resolve_loop("auto"), "rows": rows}
  report.write_json(out, result)
  cols = ["px"] + [c for impl in _IMPLS.value for c in (f"jax_{impl}_steps_per_sec",
                                                          f"jax_{impl}_memory_mib")]
  if any("torch_steps_per_sec" in r for r in rows):
    cols += ["torch_steps_per_sec"] + [f"jax_{impl}_vs_torch" for impl in _IMPLS.value]
  report.update_readme_table(f"dip_speed_{jax.default_backend()}", result["machine"], rows, cols)


if __name__ == "__main__":
  report.run(main)
