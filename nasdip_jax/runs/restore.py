"""Restore one image with DIP: degrade, build the network, fit, and write the results.

    from nasdip_jax.runs import restore
    summary = restore.run(config, workdir)   # config from configs/*.py
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np
from flax import nnx

from nasdip_jax.errors import UserError
from nasdip_jax.fit import checkpoints
from nasdip_jax.fit import cohort
from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.nets import registry
from nasdip_jax.report import files
from nasdip_jax.report import progress
from nasdip_jax.runs import common

# Fields a resumed run may change; any other difference means a different experiment.
RESUMABLE = ("num_steps", "log_every", "holdout_refit") + common.EXECUTION_FIELDS


def base_config() -> ml_collections.ConfigDict:
  """Every field of a restore run, with neutral defaults; configs/*.py set the recipes."""
  c = ml_collections.ConfigDict()
  c.run = "restore"
  common.degradation_fields(c)
  common.operator_fields(c)
  common.image_fields(c)
  common.observation_fields(c)    # observed, reference
  common.model_fields(c)
  common.fit_fields(c)            # lr, reg_noise_std, ema_decay, backtrack_db, input_depth, ...
  c.stop = "auto"                 # auto | es-wmv | discrepancy | holdout | none: oracle-free
                                  # stopping (fit.early_stop); auto: runs.common.auto_stop
  c.stop_sigma = 0.0              # discrepancy: the observation's noise std, 0..255 scale
                                  # (0 = estimated from it: scikit-image's estimate_sigma)
  c.stop_ends_fit = True          # false: fit the whole budget anyway (the curves after the stop;
                                  # the answer is still the stop's image)
  c.holdout_refit = False         # the held-out stop: refit all of the observation from the same
                                  # seed to its step (in workdir/refit, a second, shorter fit) and
                                  # answer that fit's image (the denoising recipe's); false: the
                                  # held-out fit's own image
  c.num_steps = 3000
  c.log_every = 50                # metrics.jsonl row every this many steps
  c.num_seeds = 1                 # N > 1: seeds seed..seed+N-1 as one cohort; PSNR mean and spread
  common.execution_fields(c)
  return c


def _check_config(config) -> None:
  common.check_degradation(config)
  common.check_at_least(config, ["crop_size"], 0)
  common.check_at_least(config, ["num_steps", "log_every", "crop_multiple", "num_seeds"])
  common.check_fit(config, config.model)
  common.check_execution(config)
  if config.stop_sigma < 0:
    raise UserError(f"config.stop_sigma must be >= 0 (0..255 scale), got {config.stop_sigma}")
  if config.holdout_refit and config.stop == "holdout" and config.num_seeds > 1:
    raise UserError("config.holdout_refit runs one seed at a time: set "
                    "--config.holdout_refit=false for a seed cohort with the held-out stop")
  if config.observed and config.num_seeds > 1:
    raise UserError("config.num_seeds > 1 compares seeds against a ground truth: run observation "
                    "mode one seed at a time")


def check(config) -> common.Loaded:
  """Everything `run` checks before it writes or compiles (the fields, the image and mask):
  UserError on bad input; returns the loaded problem."""
  _check_config(config)
  return common.load_restoration(config)


def prepare(config, spec, problem, compile_step: bool = True, cfg=None):
  """Everything before the first step: model, initial state and (if asked) the compiled step
  (None otherwise) of `cfg` (default: the config's); UserError if it needs more memory than
  there is."""
  cfg = cfg or common.fit_config(config)
  key = jax.random.key(config.seed)
  init_key, data_key = jax.random.split(key)
  model = common.model_builder(config, problem)(init_key, None)
  graphdef, params = nnx.split(model, nnx.Param)
  data = dip.init_data(data_key, problem, cfg)
  state = dip.init_state(params, dip.make_optimizer(cfg), problem, cfg)
  if not compile_step:
    return model, data, state, None
  compiled = dip.compile_single_fit(graphdef, spec, cfg, state, data, config.steps_per_call,
                                    config.loop)
  limit = config.memory_limit_mb * 2**20 or cohort.free_memory_bytes(1)
  if compiled.memory_bytes is not None and compiled.memory_bytes > limit:
    h, w = problem.clean.shape[1:3]
    fit_h, fit_w = fitting_size(h, w, compiled.memory_bytes, limit, config.crop_multiple)
    raise UserError(f"a {w}x{h} image needs about {compiled.memory_bytes / 2**20:.0f} MiB, more "
                    f"than the {limit / 2**20:.0f} MiB available; about {fit_w}x{fit_h} px fit "
                    f"(--config.crop_size={max(fit_h, fit_w)}, or restore tiles of that size), "
                    "or use a smaller network")
  return model, data, state, compiled


def fitting_size(h: int, w: int, need: int, limit: int, multiple: int) -> tuple:
  """The largest (h, w) of the same aspect, in multiples of `multiple`, whose memory (taken as
  proportional to the pixels: activations dominate) stays under `limit` bytes."""
  scale = (limit / need) ** 0.5
  return (max(multiple, int(h * scale) // multiple * multiple),
          max(multiple, int(w * scale) // multiple * multiple))


def _checkpoint_step(ckpt_dir: str):
  """The step of the checkpoint in ckpt_dir, None if there is none (nothing is created)."""
  if not os.path.isdir(ckpt_dir):
    return None
  checkpointer = checkpoints.FitCheckpointer(ckpt_dir)
  step = checkpointer.latest_step()
  checkpointer.close()
  return step


def _trim_metrics(path: str, step: int) -> None:
  """Drops metrics.jsonl rows at or after `step` (written after the checkpoint being resumed)."""
  if not os.path.exists(path):
    return
  rows = [l for l in open(path, encoding="utf-8") if l.strip() and json.loads(l)["step"] < step]
  image_io.atomic_write(path, lambda f: f.write("".join(rows).encode()))


def _finished(workdir: str, resume, num_steps: int) -> bool:
  """Whether the checkpoint at step `resume` ends the run: the last step, or an early stop that
  the summary beside it records."""
  if resume == num_steps:
    return True
  path = os.path.join(workdir, "summary.json")
  if not resume or not os.path.exists(path):
    return False
  summary = json.load(open(path, encoding="utf-8"))
  return (summary.get("steps") == resume and summary.get("stopped_at") is not None and
          summary.get("stop_ends_fit", True))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Restores config.image as config.task says and writes the results to workdir.

  With config.checkpoint_every, the fit state is checkpointed; rerunning the same command on the
  same workdir resumes from the last checkpoint (a finished run only rewrites its outputs).
  """
  if common.is_batch(config.image):
    return run_batch(config, workdir)
  if config.num_seeds > 1:
    return run_seeds(config, workdir)
  return _run_single(config, workdir)[0]


def _refit(config, workdir: str, stop_step: int):
  """The same-seed fit of all of the observation to the held-out stop's step, in
  workdir/refit: (its summary, its last image)."""
  refit = config.copy_and_resolve_references()
  refit.update(stop="none", holdout_refit=False, num_steps=stop_step + 1)
  progress.say(f"refitting all of the observation to the held-out stop's step {stop_step}")
  return _run_single(refit, os.path.join(workdir, "refit"))


def _run_single(config, workdir: str):
  """One seed's run: (its summary, the answer's image)."""
  t_start = time.perf_counter()
  loaded = check(config)
  spec, problem = loaded.spec, loaded.problem
  cfg = common.fit_config(config)
  ckpt_dir = os.path.join(workdir, "checkpoint")
  resume = _checkpoint_step(ckpt_dir)
  if resume:  # checked before anything compiles
    common.check_rerun(workdir, config.to_dict(), RESUMABLE)
    if resume > config.num_steps:
      raise UserError(f"{workdir} holds a run checkpointed at step {resume}, past "
                      f"config.num_steps={config.num_steps}; use a new --workdir (or at least "
                      f"{resume} steps)")
  finished = _finished(workdir, resume, config.num_steps)
  h, w = loaded.size
  if "cropped_from" in loaded.notes:
    progress.say(f"cropped the {loaded.notes['cropped_from'][1]}x"
                 f"{loaded.notes['cropped_from'][0]} image to {w}x{h}, the network's multiples "
                 f"of {config.crop_multiple} px (--config.observed=true pads instead)")
  if finished:
    progress.say(f"{workdir} holds this run, finished: rewriting its outputs")
  else:
    progress.say(f"compiling the {config.task} step for a {w}x{h} image...")
  with jax.default_matmul_precision(config.matmul_precision):
    # a finished run (checkpointed at its last step) only rewrites its outputs: no compiling
    model, data, state, compiled = prepare(config, spec, problem, not finished, cfg)
    files.make_workdir(workdir)
    checkpointer = (checkpoints.FitCheckpointer(ckpt_dir)
                    if config.checkpoint_every or resume else None)
    history = None
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if resume:
      state, history = checkpointer.restore(state, dip.metric_names(cfg))
      _trim_metrics(metrics_path, int(state.step))
      if not finished:
        progress.say(f"resuming from step {resume} of {config.num_steps}")
    elif os.path.exists(metrics_path):
      os.remove(metrics_path)
    files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
    crop = lambda img: np.asarray(img)[:h, :w]
    image_io.save_png(os.path.join(workdir, "corrupted.png"),
                      crop_observation(spec, degrade.observation_image(spec, problem), loaded))
    if loaded.has_reference:
      image_io.save_png(os.path.join(workdir, "clean.png"), crop(problem.clean[0]))
    # what a run without ground truth may show: no PSNR against the (zero) stand-in
    shown_metrics = [k for k in dip.metric_names(cfg) if loaded.has_reference or k != "psnr"]

    resumed_from = int(state.step)
    writer = files.MetricsWriter(metrics_path)
    bar = progress.Progress(config.num_steps, config.task, "step", initial=resumed_from)
    marks = {"logged": resumed_from, "saved": resumed_from}

    def on_chunk(st, curves):
      done = curves["loss"].shape[-1]
      for s in range(marks["logged"], done):
        if s % config.log_every == 0 or s == config.num_steps - 1:
          writer.write(s, **{k: curves[k][s] for k in shown_metrics})
      shown = {k: float(curves[k][-1]) for k in ("psnr", "loss", "residual", "wmv", "holdout")
               if k in shown_metrics and (k != "loss" or not loaded.has_reference)}
      bar.update(done, **shown)
      marks["logged"] = done
      last = done == config.num_steps or (config.stop_ends_fit and dip.stopped(st))
      if config.checkpoint_every and (done // config.checkpoint_every > marks["saved"] //
                                      config.checkpoint_every or last):
        checkpointer.save(st, curves)
        marks["saved"] = done

    t_fit = time.perf_counter()
    if compiled is None:  # finished: nothing to run
      curves = history
    else:
      state, curves = dip.fit(compiled, state, data, config.num_steps, config.steps_per_call,
                              on_chunk, history, stop_early=config.stop_ends_fit)
    jax.block_until_ready(state)
    fit_seconds = time.perf_counter() - t_fit
    bar.close()
    writer.close()
    if checkpointer:
      checkpointer.close()

  summary = {
      "task": config.task, "image": os.path.basename(loaded.path), "image_path": loaded.path,
      "observed": bool(config.observed), "model": config.model,
      "genotype": registry.genotype_name(config.model, config.genotype),
      "image_size": [h, w], **loaded.notes, "seed": config.seed,
      "restored": os.path.join(workdir, "restored.png")}
  final = crop(state.shown[0])
  restored = final
  if cfg.stop != "none":
    stop_step, fired = int(state.es.step), bool(state.es.stopped)
    restored = crop(state.es.image[0])
    summary.update(stop=cfg.stop, stop_step=stop_step, stop_ends_fit=config.stop_ends_fit)
    if cfg.stop == "es-wmv":
      summary.update(es_window=cfg.es_window)
    if cfg.stop == "holdout":
      summary.update(holdout_fraction=cfg.holdout_fraction)
    if cfg.stop in ("es-wmv", "holdout"):
      summary.update(es_patience=cfg.es_patience,
                     stopped_at=stop_step + cfg.es_patience if fired else None)
    else:
      summary.update(stopped_at=stop_step if fired else None)
  if loaded.has_reference:
    summary.update(_quality(spec, problem, loaded, state, curves, final, restored, crop))
  if config.holdout_refit and cfg.stop == "holdout":
    refit, restored = _refit(config, workdir, summary["stop_step"])
    summary.update(holdout_refit=os.path.join(workdir, "refit"))
    if loaded.has_reference:  # the held-out fit's own image, and the answer: the refit's
      summary.update(psnr_holdout_fit=summary["psnr_stop"], ssim_holdout_fit=summary["ssim_stop"],
                     psnr_stop=refit["psnr_final"], ssim_stop=refit["ssim_final"])
  summary.update({
      "num_params": registry.num_params(model), "steps": int(state.step),
      "num_fallbacks": int(state.num_fallbacks), "resumed_from_step": resumed_from,
      "steps_per_sec": ((int(state.step) - resumed_from) / fit_seconds
                        if int(state.step) > resumed_from else None),
      "compile_seconds": compiled.compile_seconds if compiled else 0.0,
      "wall_seconds": time.perf_counter() - t_start, "memory_mib": (
          compiled.memory_bytes / 2**20 if compiled and compiled.memory_bytes else None),
      **common.device_info(), "loop": dip.resolve_loop(config.loop)})
  _write_outputs(config, workdir, loaded, state, curves, final, restored, summary, crop,
                 shown_metrics)
  return summary, restored


def crop_observation(spec, image, loaded: common.Loaded) -> np.ndarray:
  """An observation-sized image of a padded problem cropped back (SR: the low-resolution size)."""
  scale = spec.factor if spec.task == "sr" else 1
  return np.asarray(image)[:loaded.size[0] // scale, :loaded.size[1] // scale]


def _quality(spec, problem, loaded, state, curves, final, restored, crop) -> dict:
  """PSNR and SSIM against the ground truth: final, oracle best, the stop and the input. Unpadded,
  from the fit's curves; padded, measured on the cropped images."""
  clean = crop(problem.clean[0])
  best = crop(state.best_image[0])
  baseline = crop(degrade.baseline_estimate(spec, problem))
  padded = "padded_to" in loaded.notes
  psnr = lambda image, curve_value: (degrade.quality(spec, clean, image) if padded
                                     else float(curve_value))
  out = {"psnr_final": psnr(final, curves["psnr"][-1]),
         "psnr_best": psnr(best, state.best_psnr), "best_step": int(state.best_step),
         "psnr_input": degrade.quality(spec, clean, baseline),
         "ssim_final": degrade.structural(spec, clean, final),
         "ssim_best": degrade.structural(spec, clean, best),
         "ssim_input": degrade.structural(spec, clean, baseline)}
  if state.es is not None:
    out.update(psnr_stop=psnr(restored, curves["psnr"][int(state.es.step)]),
               ssim_stop=degrade.structural(spec, clean, restored))
  return out


def _write_outputs(config, workdir, loaded, state, curves, final, restored, summary, crop,
                   shown_metrics) -> None:
  spec, problem = loaded.spec, loaded.problem
  channels = restored.shape[-1]
  if channels in (1, 3):
    image_io.save_png(os.path.join(workdir, "restored.png"), restored)
    if summary.get("stop_step") is not None:
      image_io.save_png(os.path.join(workdir, "restored_final.png"), final)
  if config.observed or channels not in (1, 3):  # full precision, any channels
    arrays = {"restored": restored, "restored_final": final} if "stop_step" in summary else {
        "restored": restored}
    for name, array in arrays.items():
      image_io.atomic_write(os.path.join(workdir, name + ".npy"),
                            lambda f, a=array: np.save(f, a.astype(np.float32)))
  files.save_curves(os.path.join(workdir, "curves.npz"),
                    {k: v for k, v in curves.items() if k in shown_metrics})
  name, es_step = os.path.basename(loaded.path), summary.get("stop_step")
  baseline = crop(degrade.baseline_estimate(spec, problem))
  if loaded.has_reference:
    best = crop(state.best_image[0])
    if channels in (1, 3):
      image_io.save_png(os.path.join(workdir, "restored_best.png"), best)
    panels = [(f"{_input_title(config, spec)}: {summary['psnr_input']:.2f} dB", baseline)]
    if es_step is not None:
      panels.append((f"{_stop_title(summary)} (step {es_step}): {summary['psnr_stop']:.2f} dB",
                     restored))
    panels += [(f"DIP final: {summary['psnr_final']:.2f} dB", final),
               (f"DIP best (step {summary['best_step']}): {summary['psnr_best']:.2f} dB", best),
               ("ground truth", crop(problem.clean[0]))]
    files.psnr_curve(os.path.join(workdir, "psnr.png"), {"PSNR vs ground truth": curves["psnr"]},
                     summary["best_step"], f"{config.task} {name}", stop_step=es_step,
                     stop=summary.get("stop", ""))
  else:
    panels = [(_input_title(config, spec), baseline)]
    if es_step is not None:
      panels.append((f"{_stop_title(summary)} (step {es_step})", restored))
    panels.append((f"DIP final (step {summary['steps'] - 1})", final))
  if channels in (1, 3):
    files.side_by_side(os.path.join(workdir, "side_by_side.png"), panels)
  if es_step is not None:
    signal, label = {"es-wmv": ("wmv", "windowed variance (ES-WMV)"),
                     "holdout": ("holdout", "held-out residual mean (A x - y)^2"),
                     "discrepancy": ("residual", "residual mean (A x - y)^2")}[summary["stop"]]
    level = summary.get("stop_sigma")
    files.stopping_curve(
        os.path.join(workdir, "stopping.png"), curves[signal], label, curves["loss"],
        es_step, f"{config.task} {name}: {summary['stop']}",
        level=None if level is None else (level / 255.0) ** 2)
  files.write_json(os.path.join(workdir, "summary.json"), summary)


def _stop_title(summary) -> str:
  return f"{summary['stop']} stop" + (" + refit" if "holdout_refit" in summary else "")


def _input_title(config, spec) -> str:
  """What the baseline estimate is, for a figure."""
  if spec.task == "sr":
    return f"bicubic x{spec.factor}"
  if spec.task == "deblur":
    return "Wiener" if config.wiener_dip else "blurred"
  return "back-projection" if spec.task == "single_pixel" else "corrupted"


# the columns of a batch's table, where its runs have them
BATCH_COLUMNS = ("image", "image_size", "steps", "stop_step", "stopped_at", "noise_sigma_estimate",
                 "stop_sigma",
                 "psnr_input", "psnr_stop", "psnr_final", "psnr_best", "ssim_stop", "ssim_final",
                 "ssim_best", "restored", "wall_seconds")


def _image_config(config, path: str, rel: str):
  """The config of one image of a batch (a mask folder gives each image its mask of the same
  relative path)."""
  sub = ml_collections.ConfigDict(config.to_dict())
  sub.image = path
  if config.mask and os.path.isdir(config.mask):
    sub.mask = os.path.join(config.mask, rel)
  return sub


def run_batch(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Restores every image of a folder (recursively) or glob pattern, each into the workdir's
  mirror of its relative path (without extension), and writes results.csv / results.md.
  Every image is checked before the first runs; a rerun skips finished images and resumes the
  one that was running."""
  t_start = time.perf_counter()
  _check_config(config)
  images = common.batch_images(config.image)
  subs = [(_image_config(config, p, rel), os.path.splitext(rel)[0]) for p, rel in images]
  for sub, _ in subs:  # bad input: before anything is written
    check(sub)
  files.make_workdir(workdir)
  rows = []
  for i, (sub, rel) in enumerate(subs):
    out = os.path.join(workdir, rel)
    summary_path = os.path.join(out, "summary.json")
    done = (os.path.exists(summary_path) and
            not files.changed_settings(json.load(open(os.path.join(out, "config.json"),
                                                       encoding="utf-8")), sub.to_dict()))
    progress.say(f"image {i + 1}/{len(subs)}: {sub.image}" + (" (finished)" if done else ""))
    summary = (json.load(open(summary_path, encoding="utf-8")) if done else run(sub, out))
    rows.append({"image": rel, **{k: summary.get(k) for k in BATCH_COLUMNS[1:]}})
  columns = [c for c in BATCH_COLUMNS if any(r.get(c) is not None for r in rows)]
  table = [[r.get(c) for c in columns] for r in rows]
  files.write_csv(os.path.join(workdir, "results.csv"), columns, table)
  files.write_markdown_table(os.path.join(workdir, "results.md"), columns, table)
  summary = {"task": config.task, "image": config.image, "num_images": len(rows),
             "results": os.path.join(workdir, "results.csv"), "images": rows,
             "wall_seconds": time.perf_counter() - t_start}
  files.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def run_seeds(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """config.num_seeds fits of one image (seeds seed, seed + 1, ...) as one cohort; writes every
  seed's curves and images, and the mean and spread of the final and best PSNR.

  Seed `seed + i` gives exactly the single run with `--config.seed=seed+i` (the degraded image is
  always the one of config.seed). Finished seeds survive a kill: rerun to resume.
  """
  t_start = time.perf_counter()
  loaded = check(config)
  path, spec, problem = loaded.path, loaded.spec, loaded.problem
  if os.path.isdir(os.path.join(workdir, "cohort")):
    common.check_rerun(workdir, config.to_dict(), RESUMABLE)
  n = config.num_seeds
  with jax.default_matmul_precision(config.matmul_precision):
    builder = common.model_builder(config, problem)
    model = builder(jax.random.key(0), None)  # build errors surface here, before compiling
    recipe = cohort.Recipe(builder, spec, common.fit_config(config))
    members = cohort.make_members(cohort.seed_keys(config.seed, n), problem)
    writer = jax.process_index() == 0  # multi-host: one writer, a workdir every host sees
    if writer:
      files.make_workdir(workdir)
      files.write_json(os.path.join(workdir, "config.json"), config.to_dict())
    progress.say(f"{n} seeds of the {config.task} fit as one cohort (compiling first)...")
    bar = progress.Progress(n * config.num_steps, config.task, "member step")
    shown = {}

    def on_chunk(idx, curves):
      steps, key = curves["loss"].shape[-1], tuple(idx)
      bar.update(bar.done + len(idx) * (steps - shown.get(key, 0)))
      shown[key] = steps

    result = cohort.train(recipe, members, config.num_steps, **common.cohort_options(config),
                          workdir=os.path.join(workdir, "cohort"), on_chunk=on_chunk)
    bar.close()
  seeds = [config.seed + i for i in range(n)]
  summary = _seed_summary(config, path, spec, problem, model, result, seeds, t_start)
  if writer:
    _write_seed_outputs(config, workdir, path, spec, problem, result, seeds, summary)
  return summary


def _seed_summary(config, path, spec, problem, model, result, seeds, t_start) -> dict:
  final, info = result.curves["psnr"][:, -1], result.info
  ssim = [degrade.structural(spec, problem.clean[0], image) for image in result.final]
  return {
      "task": config.task, "image": os.path.basename(path), "image_path": path,
      "model": config.model, "genotype": registry.genotype_name(config.model, config.genotype),
      "image_size": list(problem.clean.shape[1:3]), "seeds": seeds, "num_seeds": len(seeds),
      "psnr_final": float(final.mean()), "psnr_final_std": float(final.std(ddof=1)),
      "psnr_best": float(result.best_psnr.mean()),
      "psnr_best_std": float(result.best_psnr.std(ddof=1)),
      "psnr_final_per_seed": final.tolist(), "psnr_best_per_seed": result.best_psnr.tolist(),
      "ssim_final": float(np.mean(ssim)), "ssim_final_per_seed": ssim,
      "best_step_per_seed": result.best_step.tolist(),
      "num_fallbacks_per_seed": result.num_fallbacks.tolist(),
      "psnr_input": degrade.quality(spec, problem.clean[0],
                                    degrade.baseline_estimate(spec, problem)),
      "num_params": registry.num_params(model), "steps": config.num_steps,
      "resumed_seeds": info["resumed_members"], "execution": info["execution"],
      "devices": info["devices"], "processes": jax.process_count(),
      "chunk_members": info["chunk_members"],
      "member_steps_per_sec": info.get("member_steps_per_sec"),
      "compile_seconds": info["compile_seconds"], "wall_seconds": time.perf_counter() - t_start,
      **common.device_info()}


def _write_seed_outputs(config, workdir, path, spec, problem, result, seeds, summary) -> None:
  clean = problem.clean[0]
  image_io.save_png(os.path.join(workdir, "corrupted.png"),
                    degrade.observation_image(spec, problem))
  image_io.save_png(os.path.join(workdir, "clean.png"), clean)
  for i, seed in enumerate(seeds):
    image_io.save_png(os.path.join(workdir, f"restored_seed{seed}.png"), result.final[i])
    image_io.save_png(os.path.join(workdir, f"restored_best_seed{seed}.png"), result.best[i])
  files.save_curves(os.path.join(workdir, "curves.npz"), result.curves)
  psnr = result.curves["psnr"]
  rows = [files.dumps({"step": s, "psnr_mean": float(psnr[:, s].mean()),
                       "psnr_std": float(psnr[:, s].std()),
                       "loss_mean": float(result.curves["loss"][:, s].mean())})
          for s in range(config.num_steps) if s % config.log_every == 0 or
          s == config.num_steps - 1]
  image_io.atomic_write(os.path.join(workdir, "metrics.jsonl"),
                        lambda f: f.write("".join(r + "\n" for r in rows).encode()))
  files.psnr_curve(os.path.join(workdir, "psnr.png"),
                   {f"seed {seed}": psnr[i] for i, seed in enumerate(seeds)},
                   int(result.best_step[0]),
                   f"{config.task} {os.path.basename(path)}, {len(seeds)} seeds")
  files.write_json(os.path.join(workdir, "summary.json"), summary)
