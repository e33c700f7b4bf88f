"""Oracle-free stops against the oracle: on 12 CBSD68 images (128-px centre crops), denoising at
sigma 15 / 25 / 50, super-resolution x4 and 50% inpainting, the PSNR at the oracle-best step, at
ES-WMV's stop, at the discrepancy stop, at the held-out stop and at the final step (the criteria
see only the outputs and the observation; PSNR needs the ground truth).

    python benchmarks/early_stopping.py [--crop=128] [--width=16] [--data_dir=../shared/data]

Reduced scale for a CPU: a skip network of width --width, the recipes of configs/denoise.py,
sr4x.py and inpaint.py (inpainting in RGB) with --*_steps steps. Two fits per image and task, each
run to the end (so the final step is measured too):
- the plain fit, with ES-WMV (window 100, patience scaled to the budget:
  `fit.early_stop.auto_patience`); the discrepancy stop is the first step of the same fit whose
  recorded residual is at most the estimated noise level squared (the level `runs.common` gives
  a discrepancy run: the criterion's rule, applied to the curve; tests/test_observed.py checks
  that a run stops there);
- the held-out fit (`stop=holdout`: 10% of the observation left out of the loss), its stop and
  its own final step (`hold_final`); `hold_refit` is the plain fit's PSNR at the held-out stop's
  step (the same seed: what `--config.holdout_refit=true`, the denoising recipe's, returns).
`auto` is what stop 'auto' answers in observation mode (`runs.common.observed_stop`; for the
held-out stop the refit where the recipe refits: denoising); `psnr_best` and `psnr_final` are
the plain fit's. Fits resume after a kill (each task, image and step count has its workdir); fits
already in the results file at the same crop, width and steps are not run again (the plain fit
is, where the file has or this run makes a held-out stop without its `hold_refit`), and a task
left out of --holdout_tasks keeps the file's holdout columns. The file keeps the rows of tasks
and step counts not run; the table has a line per task and step count. Writes
benchmarks/results/early_stopping.json and its README table after every image (another width
than 16: early_stopping_w<width>.json, its own table and workdirs).
"""

import json
import os
import sys

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax import recipes  # pylint: disable=wrong-import-position
from nasdip_jax.errors import UserError  # pylint: disable=wrong-import-position
from nasdip_jax.runs import common  # pylint: disable=wrong-import-position
from nasdip_jax.runs import restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_CROP = flags.DEFINE_integer("crop", 128, "Centre crop (px).", lower_bound=32)
WIDTH = 16  # the benchmark's width; others have their own results file and table
_WIDTH = flags.DEFINE_integer("width", WIDTH, "Channels of every level of the skip network.",
                              lower_bound=1)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 12, "CBSD68 images (every 5th, sorted).",
                                   lower_bound=1)
_DENOISE_STEPS = flags.DEFINE_integer("denoise_steps", 1500, "Steps per denoising fit.",
                                      lower_bound=100)
_SR_STEPS = flags.DEFINE_integer("sr_steps", 1000, "Steps per SR fit.", lower_bound=100)
_INPAINT_STEPS = flags.DEFINE_integer("inpaint_steps", 1500, "Steps per inpainting fit.",
                                      lower_bound=100)
TASKS = ("denoise15", "denoise25", "denoise50", "sr4", "inpaint50")
_TASKS = flags.DEFINE_list("tasks", ["denoise25", "denoise50", "denoise15", "sr4", "inpaint50"],
                           "What to run.")
_HOLDOUT_TASKS = flags.DEFINE_list("holdout_tasks", list(TASKS), "Tasks that also run the "
                                    "held-out fit (the others' holdout columns stay empty).")
_FIRST_IMAGES = flags.DEFINE_integer("first_images", 0, "Only the first this many of them "
                                     "(0 = all): the finished part of a partial run.",
                                     lower_bound=0)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nasdip_early_stopping", "Where the runs write.")
report.choice_list(_TASKS, TASKS)
report.choice_list(_HOLDOUT_TASKS, TASKS, empty=True)


def _name() -> str:
  """The results file's and README table's name (and the workdirs' folder) at this width."""
  return "early_stopping" if _WIDTH.value == WIDTH else f"early_stopping_w{_WIDTH.value}"


def _workdir(kind: str, task: str, name: str, steps: int, *parts) -> str:
  """A fit's workdir: kind 'plain' or 'holdout', one per task, image and step count."""
  return os.path.join(_WORKDIR.value, *(() if _WIDTH.value == WIDTH else (_name(),)),
                      *(() if kind == "plain" else (kind,)), f"{task}_{steps}",
                      os.path.splitext(name)[0], *parts)


COLUMN = {"es-wmv": "psnr_wmv", "discrepancy": "psnr_disc", "holdout": "psnr_hold"}


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
  for task, steps in sorted({(x["task"], x["steps"]) for x in rows},
                            key=lambda k: (TASKS.index(k[0]), k[1])):
    r = [x for x in rows if (x["task"], x["steps"]) == (task, steps)]
    def mean(k, r=r):  # over the images that have the column (None if none has)
      values = [x[k] for x in r if x.get(k) is not None]
      return float(np.mean(values)) if values else None
    config = _config(task, "")
    stop = common.observed_stop(config.task)  # the held-out stop: the refit where it refits
    auto = "hold_refit" if stop == "holdout" and config.holdout_refit else COLUMN[stop]
    answers = [x.get(auto) for x in r]  # None until every image has the column
    psnr_auto = None if None in answers else float(np.mean(answers))
    table.append({"task": task, "images": len(r), "steps": steps,
                  "psnr_input": mean("psnr_input"), "psnr_best": mean("psnr_best"),
                  "psnr_wmv": mean("psnr_wmv"), "psnr_disc": mean("psnr_disc"),
                  "psnr_hold": mean("psnr_hold"), "psnr_final": mean("psnr_final"),
                  "hold_final": mean("hold_final"), "hold_refit": mean("hold_refit"),
                  "auto": auto.removeprefix("psnr_"),
                  "auto_minus_best": psnr_auto and psnr_auto - mean("psnr_best"),
                  "auto_minus_final": psnr_auto and psnr_auto - mean("psnr_final"),
                  **{f"{k}_fired": sum(bool(x.get(f"{k}_fired")) for x in r)
                     for k in ("wmv", "disc", "hold")},
                  "best_step": mean("best_step"), "wmv_step": mean("wmv_step"),
                  "disc_step": mean("disc_step"), "hold_step": mean("hold_step")})
  result = {"machine": report.machine(), "crop": _CROP.value, "width": _WIDTH.value,
            "images": names, "rows": rows, "table": table}
  report.write_json(os.path.join(report.RESULTS, _name() + ".json"), result)
  report.update_readme_table(_name(), result["machine"], table, list(table[0]))


PLAIN = ("psnr_input", "psnr_best", "best_step", "psnr_wmv", "wmv_step", "wmv_fired",
         "stop_sigma", "disc_step", "psnr_disc", "disc_fired", "psnr_final", "ssim_best",
         "ssim_wmv", "ssim_final")


def _summary(config, workdir):
  """A fit's summary: read back if it finished at config.num_steps, else run (it resumes after
  a kill)."""
  path = os.path.join(workdir, "summary.json")
  if os.path.exists(path):
    summary = json.load(open(path, encoding="utf-8"))
    if summary["steps"] == config.num_steps:
      return summary
  return restore.run(config, workdir)


def _plain(task, name, path, recorded):
  """The plain fit's columns (ES-WMV and the discrepancy stop read from one fit): from its
  finished row in the results file when the settings are the same, else from the fit."""
  config = _config(task, path)
  if recorded:
    return {k: recorded[k] for k in PLAIN}
  workdir = _workdir("plain", task, name, config.num_steps)
  s = _summary(config, workdir)
  with np.load(os.path.join(workdir, "curves.npz")) as curves:
    psnr, residual = curves["psnr"], curves["residual"]
  config.stop = "discrepancy"
  if task == "inpaint50":  # no noise estimate for a masked image: a user gives the level
    sigma, disc, reached = None, None, np.zeros(0)
  else:
    sigma = common.load_restoration(config).notes["stop_sigma"]
    reached = np.flatnonzero(residual <= np.float32(sigma / 255.0) ** 2)
    disc = int(reached[0]) if reached.size else len(psnr) - 1
  return {"psnr_input": s["psnr_input"], "psnr_best": s["psnr_best"],
          "best_step": s["best_step"], "psnr_wmv": s["psnr_stop"],
          "wmv_step": s["stop_step"], "wmv_fired": s["stopped_at"] is not None,
          "stop_sigma": sigma, "disc_step": disc,
          "psnr_disc": None if disc is None else float(psnr[disc]),
          "disc_fired": bool(reached.size), "psnr_final": s["psnr_final"],
          "ssim_best": s["ssim_best"], "ssim_wmv": s["ssim_stop"], "ssim_final": s["ssim_final"]}


HOLDOUT = ("psnr_hold", "hold_step", "hold_fired", "hold_best", "hold_final", "ssim_hold")


def _holdout(task, name, path):
  """The held-out stop's own fit (10% of the observation left out of the loss), run to the end."""
  config = _config(task, path)
  config.update(stop="holdout", holdout_refit=False)  # the plain fit's curves give the refit
  s = _summary(config, _workdir("holdout", task, name, config.num_steps))
  return {"psnr_hold": s["psnr_stop"], "hold_step": s["stop_step"],
          "hold_fired": s["stopped_at"] is not None, "hold_best": s["psnr_best"],
          "hold_final": s["psnr_final"], "ssim_hold": s["ssim_stop"]}


def _refit(task, name, steps, hold_step, recorded):
  """The plain fit's PSNR at the held-out stop's step: what a refit of all the observation to
  that step returns (the same seed: the same initialisation and input noise). From the plain
  fit's curves while its workdir exists, else the results file's value."""
  path = _workdir("plain", task, name, steps, "curves.npz")
  if hold_step is None or not os.path.exists(path):
    return (recorded or {}).get("hold_refit")
  with np.load(path) as curves:
    return float(curves["psnr"][hold_step])


def _recorded():
  """{(task, image, steps): row} of the results file at this crop and width."""
  path = os.path.join(report.RESULTS, _name() + ".json")
  if not os.path.exists(path):
    return {}
  old = json.load(open(path, encoding="utf-8"))
  if (old["crop"], old["width"]) != (_CROP.value, _WIDTH.value):
    return {}
  return {(r["task"], r["image"], r["steps"]): r for r in old["rows"]}


def main(argv):
  del argv
  folder = os.path.join(_DATA.value, "CBSD68")
  if not os.path.isdir(folder):
    raise UserError(f"no folder {folder}: --data_dir names the folder of the standard test sets")
  names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))[::5][:_NUM_IMAGES.value]
  names = names[:_FIRST_IMAGES.value or len(names)]
  rows, recorded = {}, _recorded()
  for task in _TASKS.value:
    for name in names:
      path = os.path.join(folder, name)
      key = (task, name, _config(task, path).num_steps)
      old = recorded.get(key)
      # a held-out stop without the refit's value: the plain fit's curves give it (run again)
      stale = old and old.get("hold_refit") is None and (
          old.get("hold_step") is not None or task in _HOLDOUT_TASKS.value)
      plain = _plain(task, name, path, None if stale else old)
      if task in _HOLDOUT_TASKS.value and (old or {}).get("hold_step") is None:
        held = _holdout(task, name, path)
      else:  # the results file's, if it has them
        held = {k: (old or {}).get(k) for k in HOLDOUT}
      held["hold_refit"] = _refit(task, name, key[2], held["hold_step"], old)
      rows[key] = {"task": task, "image": name, "steps": key[2], **plain, **held}
      print(rows[key], flush=True)
      # the rows so far and the file's others: images still to come, other tasks and step
      # counts (a kill loses none)
      _write(names, list(rows.values()) + [
          {**dict.fromkeys(HOLDOUT + ("hold_refit",)), **r} for k, r in recorded.items()
          if k not in rows and r["image"] in names])


if __name__ == "__main__":
  report.run(main)
