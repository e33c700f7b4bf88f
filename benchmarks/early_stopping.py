"""Oracle-free stops against the oracle: on 12 CBSD68 images (128-px centre crops), denoising at
sigma 15 / 25 / 50, super-resolution x4 and 50% inpainting, the PSNR at the oracle-best step, at
ES-WMV's stop, at the discrepancy stop and at the final step (the criteria see only the outputs
and the observation; PSNR needs the ground truth).

    python benchmarks/early_stopping.py [--crop=128] [--width=16] [--data_dir=../shared/data]

Reduced scale for a CPU: a skip network of width --width, the recipes of configs/denoise.py,
sr4x.py and inpaint.py (inpainting in RGB) with --*_steps steps. Each fit runs ES-WMV (window 100,
patience scaled to the budget: `fit.early_stop.auto_patience`) to the end, so the final step is
measured too; the discrepancy stop is the first step of the same fit whose recorded residual is
at most the estimated noise level squared (the level `runs.common` gives a discrepancy run: the
criterion's rule, applied to the curve; tests/test_observed.py checks that a run stops there).
`auto` is what stop 'auto' picks in observation mode (`runs.common.auto_stop`). Fits resume after
a kill. Writes benchmarks/results/early_stopping.json and its README table after every fit.
"""

import json
import os
import sys

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax import recipes  # pylint: disable=wrong-import-position
from nasdip_jax.runs import common  # pylint: disable=wrong-import-position
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
_SR_STEPS = flags.DEFINE_integer("sr_steps", 1000, "Steps per SR fit.", lower_bound=100)
_INPAINT_STEPS = flags.DEFINE_integer("inpaint_steps", 1500, "Steps per inpainting fit.",
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
    mean = lambda k, r=r: (None if r[0][k] is None else float(np.mean([x[k] for x in r])))
    auto = "psnr_disc" if task.startswith("denoise") else "psnr_wmv"
    table.append({"task": task, "images": len(r), "steps": r[0]["steps"],
                  "psnr_input": mean("psnr_input"), "psnr_best": mean("psnr_best"),
                  "psnr_wmv": mean("psnr_wmv"), "psnr_disc": mean("psnr_disc"),
                  "psnr_final": mean("psnr_final"),
                  "auto": auto[len("psnr_"):], "auto_minus_best": mean(auto) - mean("psnr_best"),
                  "auto_minus_final": mean(auto) - mean("psnr_final"),
                  "wmv_fired": sum(x["wmv_fired"] for x in r),
                  "disc_fired": sum(x["disc_fired"] for x in r),
                  "best_step": mean("best_step"), "wmv_step": mean("wmv_step"),
                  "disc_step": mean("disc_step")})
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
      with np.load(os.path.join(workdir, "curves.npz")) as curves:
        psnr, residual = curves["psnr"], curves["residual"]
      config.stop = "discrepancy"
      if task == "inpaint50":  # no noise estimate for a masked image: a user gives the level
        sigma, disc, reached = None, None, np.zeros(0)
      else:
        sigma = common.load_restoration(config).notes["stop_sigma"]
        reached = np.flatnonzero(residual <= np.float32(sigma / 255.0) ** 2)
        disc = int(reached[0]) if reached.size else len(psnr) - 1
      rows.append({"task": task, "image": name, "steps": s["steps"],
                   "psnr_input": s["psnr_input"], "psnr_best": s["psnr_best"],
                   "best_step": s["best_step"], "psnr_wmv": s["psnr_stop"],
                   "wmv_step": s["stop_step"], "wmv_fired": s["stopped_at"] is not None,
                   "stop_sigma": sigma, "disc_step": disc,
                   "psnr_disc": None if disc is None else float(psnr[disc]),
                   "disc_fired": bool(reached.size),
                   "psnr_final": s["psnr_final"], "ssim_best": s["ssim_best"],
                   "ssim_wmv": s["ssim_stop"], "ssim_final": s["ssim_final"]})
      print(rows[-1], flush=True)
      _write(names, rows)


if __name__ == "__main__":
  report.run(main)
