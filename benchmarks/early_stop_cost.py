"""What ES-WMV costs per DIP step: the same fit compiled with stop='none' and stop='es-wmv'
(window 100), timed in interleaved rounds (alternating order) in one process.

    python benchmarks/early_stop_cost.py [--crop=128] [--width=32] [--rounds=20] [--steps=20]

The denoising recipe on a CBSD68 crop. Writes benchmarks/results/early_stop_cost.json and its
table in benchmarks/README.md.
"""

import os
import sys
import time

import jax
import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax import hostmem  # pylint: disable=wrong-import-position
from nasdip_jax import recipes  # pylint: disable=wrong-import-position
from nasdip_jax.runs import restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_CROP = flags.DEFINE_integer("crop", 128, "Centre crop (px).", lower_bound=32)
_WIDTH = flags.DEFINE_integer("width", 32, "Channels of every level of the skip network.",
                              lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 20, "Interleaved timing rounds.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 20, "Steps per round and setting.", lower_bound=1)


def _prepared(stop: str):
  config = recipes.restore_config("denoise")
  config.net.channels_down = (_WIDTH.value,) * 5
  config.net.channels_up = (_WIDTH.value,) * 5
  config.update(image=os.path.join(_DATA.value, "CBSD68", "101085.png"), crop_size=_CROP.value,
                stop=stop, steps_per_call=_STEPS.value)
  loaded = restore.check(config)
  _, data, state, compiled = restore.prepare(config, loaded.spec, loaded.problem)
  return compiled, state, data


def main(argv):
  del argv
  hostmem.keep_freed_memory()  # as main.py does
  fits = {stop: list(_prepared(stop)) for stop in ("none", "es-wmv")}
  seconds = {stop: [] for stop in fits}
  for fit in fits.values():  # warm up
    fit[1], _ = fit[0].run(fit[1], fit[2], 2)
  for r in range(_ROUNDS.value):  # interleaved, the order alternating between rounds
    for stop, fit in (list(fits.items()) if r % 2 == 0 else list(fits.items())[::-1]):
      t0 = time.perf_counter()
      fit[1], _ = fit[0].run(fit[1], fit[2], _STEPS.value)
      jax.block_until_ready(fit[1])
      seconds[stop].append((time.perf_counter() - t0) / _STEPS.value)
  none, es = float(np.median(seconds["none"])), float(np.median(seconds["es-wmv"]))
  row = {"crop": _CROP.value, "width": _WIDTH.value, "window": 100,
         "step_ms_none": 1e3 * none, "step_ms_es_wmv": 1e3 * es,
         "es_cost_percent": 100 * (es / none - 1)}
  result = {"machine": report.machine(), "rows": [row], "seconds": seconds}
  report.write_json(os.path.join(report.RESULTS, "early_stop_cost.json"), result)
  report.update_readme_table("early_stop_cost", result["machine"], [row], list(row))
  print(row)


if __name__ == "__main__":
  report.run(main)
