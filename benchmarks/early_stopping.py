"""ES-WMV against the oracle: on 12 CBSD68 images (128-px centre crops), denoising at sigma 15 / 25
/ 50, super-resolution x4 and 50% inpainting, the PSNR at the oracle-best step, at ES-WMV's stop
and at the final step (the criterion sees only the outputs; PSNR needs the ground truth).

    python benchmarks/early_stopping.py [--crop=128] [--width=16] [--data_dir=../shared/data]

Reduced scale for a CPU: a skip network of width --width, the recipes of configs/denoise.py,
sr4x.py and inpaint.py (inpainting in RGB) with --*_steps steps; ES-WMV's window 100 and its
patience scaled to the budget (`fit.early_stop.auto_patience`). Fits run to the end (the final
step is measured too) and resume after a kill. Writes benchmarks/results/early_stopping.json and
its table in benchmarks/README.md after every fit.
"""

import json
import os
import sys

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax import recipes  # pylint: disable=wrong-import-position
from nasdip_jax.runs import restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_CROP = flags.DEFINE_integer("crop", 128, "Centre crop (px).", lower_bound=32)
_WIDTH = flags.DEFINE_integer("width", 16, "Channels of every level of the skip network.",
                              lower_bound=1)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 12, "CBSD68 images (every 5th, sorted).",
                                   lower_bound=1)
_DENOISE_STEPS = flags.DEFINE_integer("denoise_steps", 1500, "Steps per denoising fit.",
                                      lower_bound=100)
_SR_STEPS = flags.DEFINE_integer("sr_steps", 1500, "Steps per SR fit.", lower_bound=100)
_INPAINT_STEPS = flags.DEFINE_integer("inpaint_steps", 2000, "Steps per inpainting fit.",
                                      lower_bound=100)
_TASKS = flags.DEFINE_list("tasks", ["denoise25", "denoise50", "denoise15", "sr4", "inpaint50"],
                           "What to run.")
_FIRST_IMAGES = flags.DEFINE_integer("first_images", 0, "Only the first this many of them "
                                     "(0 = all): the finished part of a partial run.",
                                     lower_bound=0)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nasdip_early_stopping", "Where the runs write.")
TASKS = ("denoise15", "denoise25", "denoise50", "sr4", "inpaint50")
report.choice_list(_TASKS, TASKS)


def _config(task: str, image: str):
  if task.startswith("denoise"):
    config = recipes.restore_config("denoise")
    config.update(sigma=float(task[len("denoise"):]), num_steps=_DENOISE_STEPS.value)
  elif task == "sr4":
    config = recipes.restore_config("sr", factor=4)
    config.num_steps = _SR_STEPS.value
  else:
    config = recipes.restore_config("inpaint")
    config.update(channels="rgb", num_steps=_INPAINT_STEPS.value)
  config.net.channels_down = (_WIDTH.value,) * 5
  config.net.channels_up = (_WIDTH.value,) * 5
  config.update(image=image, crop_size=_CROP.value, stop="es-wmv", stop_ends_fit=False,
                checkpoint_every=500)
  return config


def _write(names, rows) -> None:
  """The JSON and the README table of the rows so far (written after every fit)."""
  table = []
  for task in _TASKS.value:
    r = [x for x in rows if x["task"] == task]
    if not r:
      continue
    mean = lambda k, r=r: float(np.mean([x[k] for x in r]))
    table.append({"task": task, "images": len(r), "steps": r[0]["steps"],
                  "psnr_input": mean("psnr_input"), "psnr_best": mean("psnr_best"),
                  "psnr_stop": mean("psnr_stop"), "psnr_final": mean("psnr_final"),
                  "stop_minus_best": mean("psnr_stop") - mean("psnr_best"),
                  "stop_minus_final": mean("psnr_stop") - mean("psnr_final"),
                  "fired": sum(x["stopped_at"] is not None for x in r),
                  "mean_stop_step": mean("stop_step"), "mean_best_step": mean("best_step")})
  result = {"machine": report.machine(), "crop": _CROP.value, "width": _WIDTH.value,
            "images": names, "rows": rows, "table": table}
  report.write_json(os.path.join(report.RESULTS, "early_stopping.json"), result)
  report.update_readme_table("early_stopping", result["machine"], table, list(table[0]))


def main(argv):
  del argv
  folder = os.path.join(_DATA.value, "CBSD68")
  names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))[::5][:_NUM_IMAGES.value]
  names = names[:_FIRST_IMAGES.value or len(names)]
  rows = []
  for task in _TASKS.value:
    for name in names:
      config = _config(task, os.path.join(folder, name))
      workdir = os.path.join(_WORKDIR.value, task, os.path.splitext(name)[0])
      if os.path.exists(os.path.join(workdir, "summary.json")):  # finished: read it back
        s = json.load(open(os.path.join(workdir, "summary.json"), encoding="utf-8"))
      else:
        s = restore.run(config, workdir)
      rows.append({"task": task, "image": name, "steps": s["steps"],
                   "psnr_input": s["psnr_input"], "psnr_best": s["psnr_best"],
                   "best_step": s["best_step"], "psnr_stop": s["psnr_stop"],
                   "stop_step": s["stop_step"], "stopped_at": s["stopped_at"],
                   "psnr_final": s["psnr_final"], "ssim_best": s["ssim_best"],
                   "ssim_stop": s["ssim_stop"], "ssim_final": s["ssim_final"]})
      print(rows[-1], flush=True)
      _write(names, rows)


if __name__ == "__main__":
  report.run(main)
