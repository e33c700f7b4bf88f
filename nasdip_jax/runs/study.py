"""The network-structure study's Tables 1-3 as one resumable run per table
(`configs/study_deconvolution.py`, `study_denoising.py`, `study_single_pixel.py`).

Every cell (image x level x method) is one restoration of the table's problem (one operator and
observation per image and level, shared by its methods), written to `cells/<image>_<level>_<method>
.json` and `.png` when it finishes; a rerun skips finished cells. Methods (`METHODS`):
  wiener        constant-NSR Wiener deconvolution (NSR = sigma^2 / var(b))
  admm_tv_<l>   TV-ADMM through the operator, lambda = l (the study's 5e-3 and 5e-2)
  tv            TV-ADMM through the single-pixel operator, lambda = config.tv_lambda
  nlm, bm3d     the denoisers (denoising), or plug-and-play ADMM with them (single-pixel)
  wiener_ns     the study's NS for deconvolution: DIP denoising of the Wiener estimate
  ns            the study's NS: DIP denoising (denoising); plug-and-play ADMM with a warm-started
                DIP fit as the proximal step (single-pixel)
  dip           ours: DIP fitted through the operator (deconvolution, single-pixel)
DIP cells report the final step, the oracle best and the oracle-free stop of the same fit
(`stop`: auto is `dip_stop`'s: for denoising the discrepancy stop, or the held-out stop at high
noise; ES-WMV through an operator). PSNR: 10 log10(1 / MSE) of the whole image on [0, 1], the
estimate clipped to [0, 1]; SSIM beside it.

    from nasdip_jax.runs import study
    summary = study.run(config, workdir)
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np

from nasdip_jax import study_tables
from nasdip_jax.baselines import denoisers
from nasdip_jax.fit import prox
from nasdip_jax.baselines import pnp_admm
from nasdip_jax.baselines import tv_admm
from nasdip_jax.baselines import wiener
from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.fit import early_stop
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.imaging import metrics
from nasdip_jax.imaging import operators
from nasdip_jax.report import files
from nasdip_jax.report import progress
from nasdip_jax.runs import common

TABLES = study_tables.TABLES
SCALES = {"reduced": dict(crop_size=128, num_steps=1500, width=32),  # ~an hour a table, 2 CPUs
          "paper": dict(crop_size=0, num_steps=10000, width=128)}    # full images, 1e4: a GPU
# the fields a resumed study may change: how fits run, and which cells are asked for
RESUMABLE = ("images", "levels", "methods", "log_every") + common.EXECUTION_FIELDS
ADDED = {"pnp_rho_growth": 1.0}  # fields added since the first version: what older runs used
PNP_FIELDS = ("pnp_rho", "pnp_rho_growth", "pnp_lambda", "pnp_rounds", "prox_steps")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.run = "study"
  c.table = "denoising"           # deconvolution | denoising | single_pixel
  c.scale = "reduced"             # reduced (128-px crops, width 32, 1500 steps) | paper
  c.data_dir = ""                 # the standard test sets' folder (BM3D/, Kodak24/, Set9/, Set14/)
  c.images = ()                   # () = every image of the table
  c.levels = ()                   # () = every level (noise std or compression factor)
  c.methods = ()                  # () = the study's columns plus 'dip' where it applies
  c.seed = 0                      # the noise, the measurement selection and DIP's init
  c.tv_lambda = 1e-3              # single-pixel TV-ADMM's lambda (the study does not state it)
  c.admm_rho = 0.0                # 0 = 5 lambda (tv_admm.RHO_PER_LAMBDA)
  c.admm_iterations = 200
  c.pnp_rho = 0.005               # plug-and-play ADMM (single-pixel): rho (first round),
  c.pnp_rho_growth = 1.08         # its factor per round (continuation; 1 = fixed), lambda,
  c.pnp_lambda = 1e-3             # rounds, and DIP's steps per round as the proximal step
  c.pnp_rounds = 100              # (the study's are not stated: benchmarks/pnp_tuning.py)
  c.prox_steps = 15
  common.model_fields(c)
  common.fit_fields(c)
  c.stop = "auto"                 # DIP cells' oracle-free stop, reported beside the final step
                                  # (the fits run to the end): auto | es-wmv | discrepancy
                                  # (denoising only) | holdout | none; auto: `dip_stop`
  c.num_steps = 0                 # 0 = the scale's
  c.crop_size = -1                # -1 = the scale's (0 = the whole image)
  c.width = 0                     # the DIP network's channels at every level (0 = the scale's;
                                  # config.net's other fields apply)
  c.log_every = 100
  common.execution_fields(c)
  return c


def resolved(config, name: str):
  """num_steps (0), crop_size (-1) and width (0) as the scale sets them unless given."""
  unset = {"num_steps": 0, "crop_size": -1, "width": 0}[name]
  return SCALES[config.scale][name] if config[name] == unset else config[name]


def table_methods(name: str) -> tuple:
  table = TABLES[name]
  return table["methods"] + (("dip",) if table["task"] != "denoise" else ())


def unread_fields(name: str) -> tuple:
  """The baselines' fields that no method of table `name` reads: a resumed study may change them
  (a new default of the single-pixel table's plug-and-play does not refuse a denoising run)."""
  methods = table_methods(name)
  admm = any(m == "tv" or m.startswith("admm_tv_") for m in methods)
  return ((() if TABLES[name]["task"] == "single_pixel" else PNP_FIELDS)
          + (() if "tv" in methods else ("tv_lambda",))
          + (() if admm else ("admm_rho", "admm_iterations")))


def check(config):
  """Every field, the images and the optional packages, before anything is written: UserError on
  bad input; returns the cells [(image, level, method)] and the table."""
  common.check_choice(config, "table", tuple(TABLES))
  common.check_choice(config, "scale", tuple(SCALES))
  table = TABLES[config.table]
  images = tuple(config.images) or tuple(table["images"])
  levels = tuple(config.levels) or table["levels"]
  methods = tuple(config.methods) or table_methods(config.table)
  for name, given, allowed in (("images", images, tuple(table["images"])),
                               ("levels", levels, table["levels"]),
                               ("methods", methods, table_methods(config.table))):
    bad = [v for v in given if v not in allowed]
    if bad or len(set(given)) != len(given):
      raise UserError(f"config.{name} must be distinct values from {allowed} (table "
                      f"{config.table}), got {given}")
  for name in ("tv_lambda", "pnp_rho", "pnp_lambda"):
    if not config[name] > 0:
      raise UserError(f"config.{name} must be > 0, got {config[name]}")
  pnp_admm.check_growth(config.pnp_rho_growth, "config.pnp_rho_growth")
  if config.admm_rho < 0:
    raise UserError(f"config.admm_rho must be > 0 (or 0 for 5 lambda), got {config.admm_rho}")
  common.check_at_least(config, ("admm_iterations", "pnp_rounds"))
  common.check_at_least(config, ("prox_steps",), low=0)
  if config.stop == "discrepancy" and table["task"] != "denoise":
    raise UserError("config.stop=discrepancy estimates the noise of a noisy image: the "
                    f"{config.table} table's DIP fits through an operator (use es-wmv or auto)")
  if "bm3d" in methods:
    denoisers.bm3d_module()
  for image in images:
    image_path(config, image)
  common.check_at_least(config, ("num_steps", "width"), low=0)
  with_steps = config.copy_and_resolve_references()
  with_steps.num_steps = resolved(config, "num_steps")
  common.check_fit(with_steps, config.model)
  common.check_execution(config)
  return [(i, l, m) for i in images for l in levels for m in methods], table


def image_path(config, image: str) -> str:
  """The file of one of the table's images; UserError if it is not there."""
  rel, _ = TABLES[config.table]["images"][image]
  if rel.startswith("bundled:"):
    return os.path.join(common.ASSETS, rel[len("bundled:"):])
  if not config.data_dir:
    raise UserError(f"the study's {image} image is {rel} of the standard test sets: give their "
                    "folder as --config.data_dir")
  path = os.path.join(config.data_dir, rel)
  if not os.path.isfile(path):
    raise UserError(f"image file not found: {path} (the study's {image})")
  return path


def clean_image(config, image: str) -> np.ndarray:
  """The table's image as float (H, W, C) in [0, 1]: its channels, centre-cropped to the scale's
  size (single-pixel: a power of two)."""
  _, channels = TABLES[config.table]["images"][image]
  img = image_io.load_image(image_path(config, image), channels, convert=True)
  crop = resolved(config, "crop_size")
  if config.table == "single_pixel":
    side = 1 << (min(img.shape[:2]).bit_length() - 1)
    crop = min(crop, side) if crop else side
  if crop:
    img = image_io.center_crop(img, crop)
  return img.astype(np.float32) / 255.0


def problem_of(config, table, clean: np.ndarray, level, image_index: int):
  """(operator, observation NHWC, noise std) of one row, drawn from (seed, image, level)."""
  x = clean[None]
  rng = np.random.default_rng([config.seed, image_index, int(round(1e6 * level))])
  h, w = clean.shape[:2]
  if table["task"] == "deblur":
    op = operators.Blur.of(operators.gaussian_kernel(table["blur_sigma"]))
    y = np.asarray(op.apply(x, None)) + level * rng.standard_normal(x.shape)
    return op, y.astype(np.float32), level
  if table["task"] == "denoise":
    y = np.clip(x + level * rng.standard_normal(x.shape), 0.0, 1.0)
    return operators.Identity(), y.astype(np.float32), level
  m = operators.measurement_count(h * w, float(level))
  op = operators.Hadamard(h, w, m, config.seed)
  return op, np.asarray(op.apply(x, None)).astype(np.float32), 0.0


def _quality(clean, estimate) -> dict:
  estimate = np.clip(np.asarray(estimate, np.float32), 0.0, 1.0)
  return {"psnr": float(metrics.psnr(clean, estimate)),
          "ssim": float(metrics.ssim(clean, estimate))}


# The noise level (0..255) from which the study's DIP denoising cells stop by the held-out fit
# instead of the discrepancy principle (a cell reports one fit's own image, no refit). At the
# study's noise 0.5 (sigma-hat ~90) the discrepancy stop fires far too early and the held-out
# one is 0.6-3.1 dB better (benchmarks/README.md, Table 2).
HOLDOUT_FROM_SIGMA = 64.0


def dip_stop(config, task: str, noise_sigma: float | None = None) -> str:
  """The DIP cells' stop: config.stop; 'auto' is, for denoising, the discrepancy stop, or the
  held-out stop from HOLDOUT_FROM_SIGMA (the observation's estimated level) up, and else
  `runs.common.observed_stop`."""
  if config.stop != "auto":
    return config.stop
  if task == "denoise":
    return "holdout" if noise_sigma and noise_sigma >= HOLDOUT_FROM_SIGMA else "discrepancy"
  return common.observed_stop(task)


def _dip_fit(config, builder, spec, problem, clean):
  """One DIP fit of the config's recipe (reported at the final step, the oracle best and the
  stop of `dip_stop`): {psnr, ssim, psnr_best, ..., best_step, stop, stop_step}, and the final
  image."""
  steps = resolved(config, "num_steps")
  sigma = (common.noise_sigma(np.asarray(problem.observation[0])) if spec.task == "denoise"
           else None)
  stop = dip_stop(config, spec.task, sigma)
  if stop == "discrepancy":
    problem = common.with_noise_sigma(problem, sigma)
  cfg = common.fit_config(config, stop=stop, es_patience=config.es_patience or
                          early_stop.auto_patience(config.es_window, steps))
  recipe = cohort.Recipe(builder(problem), spec, cfg)
  members = cohort.make_members(cohort.seed_keys(config.seed, 1), [problem])
  options = {**common.cohort_options(config), "execution": "loop", "mesh": None,
             "checkpoint_every": 0}
  bar = progress.Progress(steps, "DIP fit", "step")
  result = cohort.train(recipe, members, steps, **options, on_chunk=lambda _, curves: bar.update(
      curves["loss"].shape[-1], psnr=float(curves["psnr"][0, -1])))
  bar.close()
  row = {**_quality(clean, result.final[0]),
         **{f"{k}_best": v for k, v in _quality(clean, result.best[0]).items()},
         "best_step": int(result.best_step[0])}
  if result.stop_image is not None:
    row.update({f"{k}_stop": v for k, v in _quality(clean, result.stop_image[0]).items()},
               stop=stop, stop_step=int(result.stop_step[0]))
  return row, result.final[0]


def _builders(config):
  """problem -> the DIP network's builder, one object per channel count: `cohort.train` then
  reuses one compiled program for every cell of the same shapes and operator, instead of
  compiling one per cell."""
  wide, made = _with_width(config), {}

  def builder(problem):
    channels = problem.clean.shape[-1]
    if channels not in made:
      made[channels] = common.model_builder(wide, problem)
    return made[channels]
  return builder


def _with_width(config):
  """The config with the network's levels at the resolved width."""
  out = config.copy_and_resolve_references()
  width = resolved(config, "width")
  out.net.channels_down = out.net.channels_up = (width,) * len(config.net.channels_down)
  return out


def _denoise_problem(observation, clean) -> tuple:
  spec = degrade.OperatorSpec("denoise")
  mask = np.ones(observation.shape[:3] + (1,), np.float32)
  return spec, degrade.Problem(observation, clean[None], mask)


def restore_cell(config, table, builder, method: str, op, y, noise, clean):
  """(row of numbers, restored (H, W, C)) of one cell; `builder` from `_builders`."""
  x = clean[None]
  if method == "wiener":
    out = np.asarray(wiener.wiener(op, y, wiener.nsr_estimate(y, noise)))[0]
    return _quality(clean, out), out
  if method.startswith("admm_tv_") or method == "tv":
    lam = config.tv_lambda if method == "tv" else float(method[len("admm_tv_"):])
    result = tv_admm.tv_admm(op, y, None, lam, config.admm_rho or None, config.admm_iterations)
    out = np.asarray(result.image)[0]
    return {**_quality(clean, out), "lambda": lam,
            "objective_final": float(result.objective[-1])}, out
  if method in ("nlm", "bm3d") and table["task"] == "denoise":
    out = denoisers.get(method)(y, noise)[0]
    return _quality(clean, out), out
  if method in ("nlm", "bm3d") or (method == "ns" and table["task"] == "single_pixel"):
    if method == "ns":
      build = lambda key: builder(degrade.Problem(x, x, x))(key, None)
      denoise = prox.DipProx(build, common.fit_config(config, stop="none", backtrack_db=0.0),
                             x.shape, config.prox_steps, jax.random.key(config.seed))
    else:
      denoise = denoisers.get(method)
    result = pnp_admm.pnp_admm(op, y, None, denoise, config.pnp_lambda, config.pnp_rho,
                               config.pnp_rounds, rho_growth=config.pnp_rho_growth)
    out = result.image[0]
    return _quality(clean, out), out
  if method == "wiener_ns":
    estimate = np.asarray(wiener.wiener(op, y, wiener.nsr_estimate(y, noise)))
    return _dip_fit(config, builder, *_denoise_problem(estimate, clean), clean)
  if method == "ns":  # denoising
    return _dip_fit(config, builder, *_denoise_problem(y, clean), clean)
  spec = degrade.OperatorSpec(table["task"], op)  # dip: through the operator
  mask = np.ones(x.shape[:3] + (1,), np.float32)
  return _dip_fit(config, builder, spec, degrade.Problem(y, x, mask), clean)


def _cell_name(image, level, method) -> str:
  return f"{image}_{level:g}_{method}"


def _finished(path: str, source: str) -> bool:
  """Whether a cell's row exists and was computed from the table's image file of now (a cell of
  another file, or of a version that did not record it, is computed again)."""
  if not os.path.exists(path):
    return False
  with open(path, encoding="utf-8") as f:
    return json.load(f).get("source") == source


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  t_start = time.perf_counter()
  cells, table = check(config)
  if os.path.isdir(workdir):
    common.check_rerun(workdir, config.to_dict(), RESUMABLE + unread_fields(config.table), ADDED)
  cell_dir = os.path.join(workdir, "cells")
  files.make_workdir(cell_dir)
  files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  todo = [c for c in cells if not _finished(os.path.join(cell_dir, _cell_name(*c) + ".json"),
                                             table["images"][c[0]][0])]
  progress.say(f"study {config.table} ({config.scale}): {len(cells)} cells, "
               f"{len(cells) - len(todo)} finished")
  cleans, problems, builder = {}, {}, _builders(config)
  images = list(table["images"])
  with jax.default_matmul_precision(config.matmul_precision):
    for n, (image, level, method) in enumerate(todo):
      if image not in cleans:
        cleans[image] = clean_image(config, image)
      if (image, level) not in problems:
        problems[(image, level)] = problem_of(config, table, cleans[image], level,
                                              images.index(image))
      progress.say(f"cell {n + 1}/{len(todo)}: {image}, {table['level']} {level:g}, {method}")
      t0 = time.perf_counter()
      row, out = restore_cell(config, table, builder, method, *problems[(image, level)],
                              cleans[image])
      row.update(image=image, source=table["images"][image][0], level=level, method=method,
                 seconds=time.perf_counter() - t0)
      name = _cell_name(image, level, method)
      image_io.save_png(os.path.join(cell_dir, name + ".png"), out)
      files.write_json(os.path.join(cell_dir, name + ".json"), row)
  summary = _write_tables(config, workdir, cells, table)
  summary.update(wall_seconds=time.perf_counter() - t_start, **common.device_info())
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def _write_tables(config, workdir, cells, table) -> dict:
  rows = []
  for image, level, method in cells:
    with open(os.path.join(workdir, "cells", _cell_name(image, level, method) + ".json"),
              encoding="utf-8") as f:
      row = json.load(f)
    row["published"] = study_tables.published_row(table, image, level).get(method)
    rows.append(row)
  header = ["image", table["level"], "method", "psnr", "published", "psnr_best", "psnr_stop",
            "ssim", "seconds"]
  values = [[r["image"], r["level"], r["method"], r["psnr"], r["published"], r.get("psnr_best"),
             r.get("psnr_stop"), r["ssim"], r["seconds"]] for r in rows]
  files.write_csv(os.path.join(workdir, "results.csv"), header, values)
  files.write_markdown_table(os.path.join(workdir, "results.md"), header, values)
  files.write_json(os.path.join(workdir, "results.json"), rows)
  grid = os.path.join(workdir, "grid.png")
  methods = list(dict.fromkeys(c[2] for c in cells))
  read = lambda name: image_io.load_image(os.path.join(workdir, "cells", name + ".png"),
                                          TABLES[config.table]["images"][name.split("_")[0]][1])
  files.image_grid(grid, [[(f"{i} {l:g} {m}", read(_cell_name(i, l, m)) / 255.0)
                           for m in methods]
                          for i, l in dict.fromkeys((c[0], c[1]) for c in cells)])
  return {"run": "study", "table": config.table, "scale": config.scale,
          "num_steps": resolved(config, "num_steps"), "crop_size": resolved(config, "crop_size"),
          "width": resolved(config, "width"),
          "cells": len(rows), "results": os.path.join(workdir, "results.md"), "figure": grid}
