"""The network-structure study's regularisation experiment (its Sec. 4, Fig. 2).

The network is fitted to each target (the clean image; the image plus Gaussian noise; pure
U[0, 1) noise) under each regulariser (none; dropout with config.dropout_keep; L1 with config.l1;
L2 with config.l2), from the same initialisation. Each regulariser's fits of the targets run as one
cohort (resumable). Curves per fit: the loss (MSE to the target), the PSNR against the target and,
for the noisy target, against the clean image.

    from nasdip_jax.runs import regularisation
    summary = regularisation.run(config, workdir)   # config from configs/regularisation.py
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.imaging import operators
from nasdip_jax.report import files
from nasdip_jax.report import progress
from nasdip_jax.runs import common

TARGETS = ("clean", "noisy", "noise")
REGULARISERS = ("none", "dropout", "l1", "l2")
RESUMABLE = ("log_every",) + common.EXECUTION_FIELDS


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.run = "regularisation"
  c.image = ""                    # "" = the bundled 64-px house
  c.channels = "rgb"
  c.crop_size = 0
  c.crop_multiple = common.CROP_MULTIPLE
  c.seed = 0                      # the noise of the targets, the init shared by every fit
  c.noise_std = 0.1               # the noisy target's Gaussian noise ([0, 1] scale, clipped)
  c.targets = TARGETS
  c.regularisers = REGULARISERS
  common.model_fields(c)
  common.fit_fields(c)            # dropout_keep, l1, l2: each regulariser's strength
  c.num_steps = 10000
  c.log_every = 50                # (curves.npz holds every step)
  common.execution_fields(c)
  return c


def check(config):
  """The fields and the image: UserError on bad input; returns (path, clean (H, W, C) float)."""
  for name, allowed in (("targets", TARGETS), ("regularisers", REGULARISERS)):
    values = tuple(config[name])
    if not values or any(v not in allowed for v in values) or len(set(values)) != len(values):
      raise UserError(f"config.{name} must be distinct names from {allowed}, got {values}")
  common.check_choice(config, "channels", image_io.CHANNELS)
  common.check_fit(config, config.model)
  if "dropout" in config.regularisers and config.dropout_keep == 1:
    raise UserError("regulariser 'dropout' needs config.dropout_keep < 1")
  for name in ("l1", "l2"):
    if name in config.regularisers and config[name] <= 0:
      raise UserError(f"regulariser {name!r} needs config.{name} > 0")
  if config.noise_std < 0:
    raise UserError(f"config.noise_std must be >= 0, got {config.noise_std}")
  common.check_execution(config)
  common.check_at_least(config, ["crop_size"], 0)
  common.check_at_least(config, ["num_steps", "log_every", "crop_multiple"])
  path = config.image or common.default_image("denoise")
  img = image_io.load_image(path, config.channels, convert=not config.image)
  if config.crop_size:
    img = image_io.center_crop(img, config.crop_size)
  return path, image_io.to_float(image_io.crop_to_multiple(img, config.crop_multiple))


def make_targets(clean: np.ndarray, names, noise_std: float, seed: int) -> dict:
  """{name: Problem}: observation = the target, clean = what PSNR is measured against (the clean
  image for the noisy target, else the target itself)."""
  rng = np.random.default_rng(seed)
  noisy = np.clip(clean + rng.normal(0.0, noise_std, clean.shape), 0, 1).astype(np.float32)
  noise = rng.random(clean.shape).astype(np.float32)
  mask = np.ones(clean.shape[:2] + (1,), np.float32)
  made = {"clean": (clean, clean), "noisy": (noisy, clean), "noise": (noise, noise)}
  return {n: degrade.Problem(made[n][0][None], made[n][1][None], mask[None]) for n in names}


def regulariser_config(config, name: str):
  """The FitConfig of one regulariser: only its own strength is on."""
  return common.fit_config(config, dropout_keep=config.dropout_keep if name == "dropout" else 1.0,
                           l1=config.l1 if name == "l1" else 0.0,
                           l2=config.l2 if name == "l2" else 0.0)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  t_start = time.perf_counter()
  path, clean = check(config)
  if os.path.isdir(workdir):
    common.check_rerun(workdir, config.to_dict(), RESUMABLE)
  targets = make_targets(clean, config.targets, config.noise_std, config.seed)
  spec = degrade.OperatorSpec("denoise", operators.Identity())
  problems = [targets[t] for t in config.targets]
  files.make_workdir(workdir)
  files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  n_fits = len(config.regularisers) * len(problems)
  progress.say(f"{n_fits} fits ({len(config.regularisers)} regularisers x "
               f"{len(problems)} targets), {config.num_steps} steps each")
  results = {}
  with jax.default_matmul_precision(config.matmul_precision):
    builder = common.model_builder(config, problems[0])
    for reg in config.regularisers:
      recipe = cohort.Recipe(builder, spec, regulariser_config(config, reg))
      # one initialisation for every fit: the regulariser and the target are all that differ
      members = cohort.make_members(
          jnp.stack([jax.random.key(config.seed)] * len(problems)), problems)
      bar = progress.Progress(len(problems) * config.num_steps, f"regulariser {reg}",
                              "member step")
      shown = {}

      def on_chunk(idx, curves, bar=bar, shown=shown):
        steps, key = curves["loss"].shape[-1], tuple(idx)
        bar.update(bar.done + len(idx) * (steps - shown.get(key, 0)))
        shown[key] = steps

      results[reg] = cohort.train(recipe, members, config.num_steps,
                                  **common.cohort_options(config),
                                  workdir=os.path.join(workdir, "cohorts", reg),
                                  on_chunk=on_chunk)
      bar.close()
  summary = _summary(config, path, spec, targets, results, t_start)
  summary["figure"] = os.path.join(workdir, "regularisation.png")
  _write(config, workdir, targets, results, summary)
  return summary


def _summary(config, path, spec, targets, results, t_start) -> dict:
  rows = []
  for reg, result in results.items():
    for i, t in enumerate(config.targets):
      curves = result.curves
      target = targets[t].observation[0]
      row = {"target": t, "regulariser": reg, "loss_final": float(curves["loss"][i, -1]),
             "psnr_target_final": float(curves["psnr_obs"][i, -1]),
             "psnr_target_best": float(np.max(curves["psnr_obs"][i])),
             "ssim_target_final": degrade.structural(spec, target, result.final[i])}
      if t == "noisy":
        row.update(psnr_clean_final=float(curves["psnr"][i, -1]),
                   psnr_clean_best=float(result.best_psnr[i]),
                   best_step=int(result.best_step[i]),
                   ssim_clean_final=degrade.structural(spec, targets[t].clean[0],
                                                       result.final[i]))
      rows.append(row)
  return {"run": "regularisation", "image": os.path.basename(path), "image_path": path,
          "image_size": list(targets[config.targets[0]].clean.shape[1:3]),
          "model": config.model, "steps": config.num_steps, "lr": config.lr,
          "dropout_keep": config.dropout_keep, "l1": config.l1, "l2": config.l2,
          "noise_std": config.noise_std, "fits": rows,
          "wall_seconds": time.perf_counter() - t_start, **common.device_info()}


def _write(config, workdir, targets, results, summary) -> None:
  for t, problem in targets.items():
    image_io.save_png(os.path.join(workdir, f"target_{t}.png"), problem.observation[0])
  curves = {}
  for reg, result in results.items():
    for i, t in enumerate(config.targets):
      image_io.save_png(os.path.join(workdir, f"fit_{t}_{reg}.png"), result.final[i])
      for k, v in result.curves.items():
        curves[f"{t}/{reg}/{k}"] = v[i]
  files.save_curves(os.path.join(workdir, "curves.npz"), curves)
  files.regularisation_figure(os.path.join(workdir, "regularisation.png"), config.targets,
                              config.regularisers, curves)
  header = ["target", "regulariser", "loss_final", "psnr_target_final", "ssim_target_final",
            "psnr_clean_final"]
  table = [[r["target"], r["regulariser"], r["loss_final"], r["psnr_target_final"],
            r["ssim_target_final"], r.get("psnr_clean_final", "")] for r in summary["fits"]]
  files.write_csv(os.path.join(workdir, "results.csv"), header, table)
  files.write_json(os.path.join(workdir, "summary.json"), summary)
