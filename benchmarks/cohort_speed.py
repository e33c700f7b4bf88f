"""Throughput (member-steps per second) of DIP cohorts against training the members one after
another, through the cohort API (`fit.cohort.train`).

    python benchmarks/cohort_speed.py [--sizes=64,256] [--members=1,4,15,64]

'loop' is the sequential baseline (one compiled single-member step, members in turn); 'vmap'
trains the cohort as one vmapped step sharded over every device; 'shard_map' (with more than one
device) gives each device its block. Every member is the standard DIP network (2.2M params) on
its own seed, denoising an RGB image; members that do not fit the device memory are split into
chunks (the `chunk` column). Writes benchmarks/results/cohort_speed_<backend>.json and the table
in benchmarks/README.md.
"""

import json
import os
import sys

from absl import flags
import jax
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.fit import cohort  # pylint: disable=wrong-import-position
from nasdip_jax.fit import dip  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import degrade  # pylint: disable=wrong-import-position
from nasdip_jax.nets import skip  # pylint: disable=wrong-import-position

_SIZES = flags.DEFINE_list("sizes", ["64", "256"], "Image sizes (px, square).")
_MEMBERS = flags.DEFINE_list("members", ["1", "4", "15", "64"], "Cohort sizes.")
_EXECUTIONS = flags.DEFINE_list("executions", None,
                                "Default: loop and vmap, plus shard_map with several devices.")
_STEPS = flags.DEFINE_integer("steps", 0, "Timed steps per member (0 = 20 at 64 px, else 2).",
                              lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "JSON path (default benchmarks/results/...).")
report.int_list(_SIZES, lower=32, multiple=32)
report.int_list(_MEMBERS)
report.choice_list(_EXECUTIONS, cohort.EXECUTIONS)


def _recipe_and_problem(px):
  img = (np.random.default_rng(0).random((px, px, 3)) * 255).astype(np.uint8)
  spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
  cfg = dip.FitConfig(ema_decay=0.99)
  build = lambda key, code: skip.SkipNet(cfg.input_depth, 3, rngs=nnx.Rngs(params=key))
  return cohort.Recipe(build, spec, cfg), problem


def main(argv):
  del argv
  executions = _EXECUTIONS.value or (["loop", "vmap"] + (["shard_map"]
                                                         if jax.device_count() > 1 else []))
  rows = []
  for px in map(int, _SIZES.value):
    recipe, problem = _recipe_and_problem(px)
    steps = _STEPS.value or (20 if px <= 64 else 2)
    for n in map(int, _MEMBERS.value):
      members = cohort.make_members(cohort.seed_keys(0, n), problem)
      row = {"px": px, "members": n, "steps": steps}
      for execution in executions:
        r = cohort.train(recipe, members, steps, execution=execution, steps_per_call=steps)
        info = r.info
        row[f"{execution}_member_steps_per_sec"] = info["member_steps_per_sec"]
        row[f"{execution}_compile_seconds"] = info["compile_seconds"]
        row[f"{execution}_chunk"] = info["chunk_members"]
        row[f"{execution}_memory_mib"] = (info["memory_bytes"] or 0) / 2**20
      for execution in executions:
        if execution != "loop":
          row[f"{execution}_vs_sequential"] = (row[f"{execution}_member_steps_per_sec"]
                                               / row["loop_member_steps_per_sec"])
      rows.append(row)
      print(json.dumps(row), flush=True)
  out = _OUT.value or os.path.join(report.RESULTS, f"cohort_speed_{jax.default_backend()}.json")
  if os.path.exists(out):  # keep the other sizes of an earlier run
    measured = {(r["px"], r["members"]) for r in rows}
    rows = sorted([r for r in json.load(open(out, encoding="utf-8"))["rows"]
                   if (r["px"], r["members"]) not in measured] + rows,
                  key=lambda r: (r["px"], r["members"]))
  result = {"machine": report.machine(), "devices": jax.device_count(),
            "executions": executions, "rows": rows}
  report.write_json(out, result)
  cols = ["px", "members", "loop_member_steps_per_sec"]
  for execution in executions:
    if execution != "loop":
      cols += [f"{execution}_member_steps_per_sec", f"{execution}_chunk",
               f"{execution}_vs_sequential"]
  report.update_readme_table(f"cohort_speed_{jax.default_backend()}", result["machine"], rows,
                             cols)


if __name__ == "__main__":
  report.run(main)
