"""What the runs share (no run module imports another): the config fields of a problem, a fit
and its execution, each defined once; loading and degrading the configured image; the bundled
default images; the config checks; the rerun-settings check; a `FitConfig` and the cohort
options from a config; the device lines of a summary.
"""

import dataclasses
import glob
import json
import os
from typing import NamedTuple, Optional

import jax
import ml_collections
import numpy as np
from flax import nnx

from nasdip_jax.baselines import wiener
from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.fit import dip
from nasdip_jax.fit import early_stop
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.imaging import operators
from nasdip_jax.nets import registry
from nasdip_jax.report import files
from nasdip_jax.search import psd_metrics

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")
DEFAULT_IMAGES = {"denoise": "house.png", "inpaint": "cameraman.png", "sr": "butterfly.png",
                  "deblur": "house.png", "single_pixel": "logo.png"}
SEARCH_TASKS = ("denoise", "inpaint", "sr")  # the tasks the searches and NAS datasets know
SENSING = ("hadamard", "scrambled", "dense")
PRECISIONS = ("default", "high", "highest")
CROP_MULTIPLE = 32  # the reference's rule: images are centre-cropped to multiples of 32
FIT_FIELDS = tuple(f.name for f in dataclasses.fields(dip.FitConfig))
# the execution fields: how a fit runs, never what it computes (a resumed run may change them,
# except the matrix-product precision)
EXECUTION_FIELDS = ("steps_per_call", "loop", "checkpoint_every", "memory_limit_mb",
                    "execution", "num_devices")


def degradation_fields(c: ml_collections.ConfigDict) -> None:
  """The task and how a clean image is degraded (identical on every backend: numpy, seeded)."""
  c.task = "denoise"              # denoise | inpaint | sr | deblur | single_pixel
  c.channels = "rgb"              # rgb | gray: a user image's mode must match
  c.seed = 0                      # degradation (noise, mask, measurements), init, z, input noise
  c.sigma = 25.0                  # denoise: noise std on the 0..255 scale
  c.keep_fraction = 0.5           # inpaint: fraction of observed pixels (Bernoulli mask)
  c.factor = 4                    # sr: 2, 4 or 8


def operator_fields(c: ml_collections.ConfigDict) -> None:
  """The operator tasks' fields (deblur, single_pixel): restore runs only."""
  c.noise_std = 0.0               # deblur, single_pixel: noise std on the [0, 1] scale (A x + n)
  c.blur_sigma = 5.0              # deblur: Gaussian blur std in px
  c.blur_size = 0                 # deblur: Gaussian kernel side (0 = 2 ceil(3 sigma) + 1)
  c.kernel = ""                   # deblur: kernel file (.npy, or an image; normalised) instead
  c.boundary = "circular"         # deblur: circular (FFT) | reflect (edge-mirrored image)
  c.wiener_dip = False            # deblur: DIP denoises the Wiener estimate ("Wiener + NS")
                                  # instead of fitting through the blur
  c.compression = 4.0             # single_pixel: compression factor CF = N / M (>= 1)
  c.sensing = "hadamard"          # single_pixel: hadamard (DC + random rows of the 2-D WHT) |
                                  # scrambled (pixels permuted first) | dense (+-1/sqrt(M))


def image_fields(c: ml_collections.ConfigDict) -> None:
  """The image restored and how it is cropped."""
  c.image = ""                    # path; "" = the bundled 64-px default image for the task
  c.crop_size = 0                 # centre crop to at most this many px per side first (0 = off)
  c.crop_multiple = CROP_MULTIPLE  # the network's granularity: centre crop to multiples of it
                                  # (observation mode: reflect-pad to them, crop back)
  c.mask = ""                     # inpaint: mask file of the image's size (nonzero = observed;
                                  # 1-bit, L, palette or RGB), cropped as the image


def observation_fields(c: ml_collections.ConfigDict) -> None:
  """Observation mode (restore runs): the image is the observation itself."""
  c.observed = False              # true: config.image *is* the noisy / masked / low-resolution /
                                  # blurred image (nothing added; padded, never cropped)
  c.reference = ""                # observation mode: the ground truth (the output's size), for
                                  # PSNR and SSIM; without it no ground-truth number is reported
  c.mask_color = ""               # observed inpainting without a mask file: 'R,G,B' (or 'V' for
                                  # grayscale) 0..255: pixels of exactly this colour are missing


def model_fields(c: ml_collections.ConfigDict) -> None:
  """The network a single fit trains: a model by name and the skip family's widths."""
  c.model = "skip"                # skip | skip_cell | autoencoder | nasdip | nasdip_denoise |
                                  # nasdip_inpaint | nasdip_sr
  c.genotype = ""                 # '<cell id>_<25 bits>' for models nasdip and skip_cell
  c.net = ml_collections.ConfigDict(dict(
      channels_down=(128,) * 5, channels_up=(128,) * 5, channels_skip=registry.SKIP_WIDTHS,
      kernel_down=3, kernel_up=3, kernel_skip=1, upsample="bilinear", need1x1_up=True,
      pad="reflection", conv_impl="auto"))


def model_builder(config, problem):
  """(key, code) -> the network of a config's model fields for the problem, initialised from key."""
  out_ch = problem.clean.shape[-1]
  return lambda key, code: registry.build_model(
      config.model, config.net.to_dict(), config.input_depth, out_ch, genotype=config.genotype,
      rngs=nnx.Rngs(params=key))


def fit_fields(c: ml_collections.ConfigDict) -> None:
  """Every field of `dip.FitConfig`, with its default: the one schema of a fit's settings."""
  for f in dataclasses.fields(dip.FitConfig):
    c[f.name] = f.default


def execution_fields(c: ml_collections.ConfigDict) -> None:
  """How fits run: chunks, loop, checkpoints, memory, cohort execution, precision."""
  c.steps_per_call = 50           # K: steps per chunk; metrics reach the host once per chunk
  c.loop = "auto"                 # auto | scan | dispatch (see fit.dip.resolve_loop)
  c.checkpoint_every = 500        # steps between checkpoints (0 = off); a rerun resumes
  c.memory_limit_mb = 0           # 0 = the device's free memory
  c.execution = "auto"            # cohort execution: auto | vmap | shard_map | loop (fit.cohort)
  c.num_devices = 0               # cohort mesh size (0 = every device of every host)
  c.matmul_precision = "highest"  # default | high | highest (TPU/GPU conv precision)


def check_choice(config, name: str, choices) -> None:
  if config[name] not in choices:
    raise UserError(f"config.{name} must be one of {tuple(choices)}, got {config[name]!r}")


def check_at_least(config, names, low: int = 1) -> None:
  for name in names:
    if config[name] < low:
      raise UserError(f"config.{name} must be >= {low}, got {config[name]}")


# the fields only some tasks use
_DEBLUR = ("deblur",)
TASK_FIELDS = {"sigma": ("denoise",), "keep_fraction": ("inpaint",), "mask": ("inpaint",),
               "mask_color": ("inpaint",),
               "factor": ("sr",), "noise_std": ("deblur", "single_pixel"),
               "blur_sigma": _DEBLUR, "blur_size": _DEBLUR, "kernel": _DEBLUR,
               "boundary": _DEBLUR, "wiener_dip": _DEBLUR,
               "compression": ("single_pixel",), "sensing": ("single_pixel",)}


def check_degradation(config, tasks=degrade.TASKS) -> None:
  check_choice(config, "task", tasks)
  check_degradation_fields(config, (config.task,))


def check_degradation_fields(config, tasks) -> None:
  """The degradation fields of a run doing `tasks` (keep_fraction and factor are checked by
  `imaging.degrade.make_problem`)."""
  check_choice(config, "channels", image_io.CHANNELS)
  check_used(config, tasks)
  if config.sigma < 0:
    raise UserError(f"config.sigma must be >= 0 (0..255 scale), got {config.sigma}")
  if "noise_std" not in config:
    return
  if config.noise_std < 0:
    raise UserError(f"config.noise_std must be >= 0 ([0, 1] scale), got {config.noise_std}")
  if not config.kernel and config.blur_sigma <= 0:
    raise UserError(f"config.blur_sigma must be > 0 px, got {config.blur_sigma}")
  check_at_least(config, ["blur_size"], 0)
  check_choice(config, "boundary", operators.BOUNDARIES)
  check_choice(config, "sensing", SENSING)
  if not config.compression >= 1:
    raise UserError(f"config.compression must be >= 1 (CF = N / M), got {config.compression}")


def check_used(config, tasks) -> None:
  """UserError naming a field that none of `tasks` uses but that is set away from its default
  (e.g. a mask for denoising): a setting that would silently do nothing."""
  defaults = ml_collections.ConfigDict()
  degradation_fields(defaults)
  operator_fields(defaults)
  image_fields(defaults)
  observation_fields(defaults)
  for name, users in TASK_FIELDS.items():
    if name in config and not set(users) & set(tasks) and config[name] != defaults[name]:
      raise UserError(f"config.{name} is for task {' / '.join(users)} only; this run's task is "
                      f"{' / '.join(tasks)}, so --config.{name}={config[name]} would do nothing")


def check_fit(config, model: str, min_input_depth: int = 1) -> None:
  """The fit fields of a run whose networks are `model` (searches: 'nasdip')."""
  if config.lr <= 0:
    raise UserError(f"config.lr must be > 0, got {config.lr}")
  check_at_least(config, ["input_depth"], min_input_depth)
  if not 0 < config.dropout_keep <= 1:
    raise UserError(f"config.dropout_keep must be in (0, 1], got {config.dropout_keep}")
  registry.check_dropout(model, config.dropout_keep)
  for name in ("reg_noise_std", "ema_decay", "backtrack_db", "l1", "l2"):
    if config[name] < 0:
      raise UserError(f"config.{name} must be >= 0, got {config[name]}")
  if config.ema_decay >= 1:
    raise UserError(f"config.ema_decay must be < 1, got {config.ema_decay}")
  check_choice(config, "stop", early_stop.METHODS + ("auto",))
  check_at_least(config, ["es_window"])
  check_at_least(config, ["es_patience"], 0)
  if not 0 < config.holdout_fraction < 1:
    raise UserError(f"config.holdout_fraction must be in (0, 1), got {config.holdout_fraction}")
  if fit_config(config).stop == "es-wmv" and config.es_window > config.num_steps:
    raise UserError(f"config.es_window={config.es_window} is longer than the fit "
                    f"(config.num_steps={config.num_steps}); ES-WMV needs a full window")


def check_execution(config) -> None:
  check_choice(config, "matmul_precision", PRECISIONS)
  check_choice(config, "loop", dip.LOOPS)
  check_choice(config, "execution", cohort.EXECUTIONS)
  check_at_least(config, ["steps_per_call"])
  check_at_least(config, ["checkpoint_every", "memory_limit_mb", "num_devices"], 0)


def check_metrics(names) -> None:
  """UserError naming a training-free metric that does not parse."""
  for name in names:
    try:
      psd_metrics.parse(name)
    except ValueError as e:
      raise UserError(str(e)) from None


def check_metric_sizes(names, problem: degrade.Problem) -> None:
  """UserError if a metric of `names` cannot be computed on the problem's observation."""
  try:
    psd_metrics.check_size(names, *problem.observation.shape[1:3])
  except ValueError as e:
    raise UserError(str(e)) from None


def default_image(task: str) -> str:
  return os.path.join(ASSETS, DEFAULT_IMAGES[task])


def bundled_images() -> list:
  """Paths of the bundled photographs (the search tasks' defaults), sorted."""
  return [os.path.join(ASSETS, f) for f in sorted({DEFAULT_IMAGES[t] for t in SEARCH_TASKS})]


def load_image_problem(config, image: str, crop_size: int, crop_multiple: int, mask: str):
  """(path, spec, problem): `image` ("" = the task's bundled one, converted to config.channels;
  a user's image must have that mode) centre-cropped to at most crop_size (0 = off), then to
  multiples of crop_multiple, and degraded as config says with numpy's generator of config.seed.
  An inpainting mask file has the image's size and is cropped as the image."""
  path = image or default_image(config.task)
  full = image_io.load_image(path, config.channels, convert=not image)

  def crop(img):
    if crop_size:
      img = image_io.center_crop(img, crop_size)
    return image_io.crop_to_multiple(img, crop_multiple)

  clean, mask_u8 = crop(full), None
  if config.task == "inpaint" and mask:
    mask_u8 = image_io.load_mask(mask)
    if mask_u8.shape[:2] != full.shape[:2]:
      raise UserError(f"{mask}: the mask is {mask_u8.shape[1]}x{mask_u8.shape[0]} px but the "
                      f"image is {full.shape[1]}x{full.shape[0]}; give a mask of the image's size")
    mask_u8 = crop(mask_u8)
  operator = make_operator(config, *clean.shape[:2])
  spec, problem = degrade.make_problem(
      clean, config.task, np.random.default_rng(config.seed), sigma=config.sigma,
      keep_fraction=config.keep_fraction, mask_u8=mask_u8, factor=config.factor,
      operator=operator, noise_std=config.get("noise_std", 0.0))
  if config.task == "deblur" and config.wiener_dip:
    estimate = wiener.wiener(operator, problem.observation,
                             wiener.nsr_estimate(problem.observation, config.noise_std))
    spec = degrade.OperatorSpec("deblur", operators.Identity())
    problem = problem._replace(observation=np.asarray(estimate))
  return path, spec, problem


def make_operator(config, height: int, width: int):
  """The operator of a deblur or single_pixel config for an image of this size (else None)."""
  if config.task == "deblur":
    kernel = (image_io.load_kernel(config.kernel) if config.kernel
              else operators.gaussian_kernel(config.blur_sigma, config.blur_size))
    blur = operators.Blur.of(kernel, config.boundary)
    blur.check_size(height, width)
    return blur
  if config.task == "single_pixel":
    m = operators.measurement_count(height * width, config.compression)
    if config.sensing == "dense":
      return operators.RandomDense(height, width, m, config.seed)
    return operators.Hadamard(height, width, m, config.seed, config.sensing == "scrambled")
  return None


# the synthetic-mode fields an observation never uses (nothing is added to it)
SYNTHETIC_FIELDS = ("sigma", "keep_fraction")


class Loaded(NamedTuple):
  """A restore run's problem and what its summary says about the image."""
  path: str
  spec: degrade.OperatorSpec
  problem: degrade.Problem
  size: tuple               # (h, w) of the output: `[:h, :w]` of the network's output
  has_reference: bool       # whether problem.clean is a ground truth (else zeros)
  notes: dict               # for the summary: cropped_from, padded_to, noise_sigma_estimate


def load_restoration(config) -> Loaded:
  """The problem of a restore config: synthetic (a clean image degraded; cropped to the network's
  granularity, which the notes say) or, with config.observed, the observed image (padded)."""
  if not config.observed:
    if config.reference:
      raise UserError("config.reference is for observation mode (--config.observed=true); a "
                      "synthetic run's ground truth is config.image itself")
    path, spec, problem = load_problem(config)
    h, w = problem.clean.shape[1:3]
    full = image_io.load_image(path, config.channels, convert=not config.image)
    if config.crop_size:  # asked for: not news
      full = image_io.center_crop(full, config.crop_size)
    notes = {"cropped_from": list(full.shape[:2])} if full.shape[:2] != (h, w) else {}
    return _with_noise_level(config, Loaded(path, spec, problem, (h, w), True, notes))
  if not config.image:
    raise UserError("observation mode restores your image: give it with --config.image=PATH")
  defaults = ml_collections.ConfigDict()
  degradation_fields(defaults)
  for name in SYNTHETIC_FIELDS:
    if config[name] != defaults[name]:
      raise UserError(f"config.{name} degrades a clean image; with --config.observed=true the "
                      "image is already the observation, so it would do nothing")
  observation = image_io.load_observation(config.image, config.channels)
  mask = reference = None
  if config.mask and config.mask_color:
    raise UserError("give the inpainting mask as a file (config.mask) or a colour "
                    "(config.mask_color), not both")
  if config.task == "inpaint" and config.mask_color:
    mask = colour_key_mask(observation, config.mask_color)
  if config.task == "inpaint" and config.mask:
    mask = image_io.load_mask(config.mask)
    if mask.shape[:2] != observation.shape[:2]:
      raise UserError(f"{config.mask}: the mask is {mask.shape[1]}x{mask.shape[0]} px but the "
                      f"image is {observation.shape[1]}x{observation.shape[0]}; give a mask of "
                      "the image's size")
  if config.crop_size:
    observation = image_io.center_crop(observation, config.crop_size)
    mask = None if mask is None else image_io.center_crop(mask, config.crop_size)
  h, w = observation.shape[:2]
  if config.reference:
    reference = image_io.load_observation(config.reference, config.channels)
    if config.crop_size:
      scale = config.factor if config.task == "sr" else 1
      reference = image_io.center_crop(reference, config.crop_size * scale)
  if config.task == "sr" and observation.shape[-1] not in (1, 3):
    raise UserError(f"super-resolution takes 1 or 3 channels, got {observation.shape[-1]}")
  spec, problem, size = degrade.observed_problem(
      observation, config.task, config.crop_multiple, mask=mask, factor=config.factor,
      operator=make_operator(config, h, w), reference=reference)
  notes = {}
  if problem.clean.shape[1:3] != size:
    notes["padded_to"] = list(problem.clean.shape[1:3])
  if config.task == "denoise":
    notes["noise_sigma_estimate"] = noise_sigma(observation)
  return _with_noise_level(config, Loaded(config.image, spec, problem, size,
                                          reference is not None, notes))


def _with_noise_level(config, loaded: Loaded) -> Loaded:
  """The discrepancy stop's noise level in the problem (and the summary's notes): config.stop_sigma,
  or (0) observed denoising's estimate, or the estimate from the observation (unpadded: padding
  repeats the noise)."""
  if fit_config(config).stop != "discrepancy":
    return loaded
  sigma = config.get("stop_sigma") or loaded.notes.get("noise_sigma_estimate")
  if not sigma:
    if loaded.spec.task in ("single_pixel", "inpaint"):
      raise UserError(f"the discrepancy stop cannot estimate the noise of {loaded.spec.task}'s "
                      "observation: give it with --config.stop_sigma (0..255 scale)")
    sigma = noise_sigma(np.asarray(loaded.problem.observation[0])[
        :loaded.size[0] // loaded.spec.factor, :loaded.size[1] // loaded.spec.factor])
  return loaded._replace(problem=with_noise_sigma(loaded.problem, sigma),
                         notes={**loaded.notes, "stop_sigma": float(sigma)})


def with_noise_sigma(problem, sigma: float):
  """The problem with the discrepancy stop's noise level: sigma on the 0..255 scale."""
  return problem._replace(noise_std=np.full((1,), sigma / 255.0, np.float32))


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy", ".npz")


def is_batch(image: str) -> bool:
  """Whether config.image names many images: a folder or a glob pattern."""
  return os.path.isdir(image) or any(c in image for c in "*?[")


def batch_images(image: str) -> list:
  """[(path, path relative to the folder or the pattern's fixed part)] of a folder (recursively,
  image and array files) or a glob pattern, sorted; UserError if it matches nothing."""
  if os.path.isdir(image):
    root = image
    paths = [os.path.join(d, f) for d, _, names in os.walk(image) for f in names
             if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
  else:
    root = os.path.dirname(image.split("*")[0].split("?")[0].split("[")[0]) or "."
    paths = [p for p in glob.glob(image, recursive=True) if os.path.isfile(p)]
  if not paths:
    raise UserError(f"config.image={image!r} matches no image files "
                    f"({', '.join(IMAGE_EXTENSIONS)})")
  return sorted((p, os.path.relpath(p, root)) for p in paths)


def colour_key_mask(observation: np.ndarray, colour: str) -> np.ndarray:
  """(H, W, 1) uint8: 0 where a pixel has exactly `colour` ('R,G,B' or 'V', 0..255), 255 else."""
  try:
    values = [int(v) for v in colour.split(",")]
  except ValueError:
    values = []
  if len(values) != observation.shape[-1] or not all(0 <= v <= 255 for v in values):
    raise UserError(f"config.mask_color must be {observation.shape[-1]} comma-separated values "
                    f"in 0..255 for this image, got {colour!r}")
  key = np.all(image_io.to_uint8(observation) == np.asarray(values, np.uint8), axis=-1)
  if not key.any():
    raise UserError(f"no pixel of the image has the colour {colour}; nothing would be inpainted")
  return np.where(key, 0, 255).astype(np.uint8)[..., None]


def noise_sigma(observation: np.ndarray) -> float:
  """scikit-image's wavelet estimate of the Gaussian noise std of an image, 0..255 scale."""
  from skimage import restoration  # pylint: disable=import-outside-toplevel
  return 255.0 * float(restoration.estimate_sigma(observation, channel_axis=-1,
                                                  average_sigmas=True))


def load_problem(config):
  """`load_image_problem` of a config with the image fields."""
  return load_image_problem(config, config.image, config.crop_size, config.crop_multiple,
                            config.mask)


def observed_stop(task: str) -> str:
  """The stop for an observation of `task` without ground truth: the held-out stop for denoising
  (the recipe refits all of the observation to its step: `holdout_refit`) and inpainting,
  ES-WMV through the other operators. At the denoising recipe's width the refit was within 0.16
  dB of the oracle best on average at sigma 15, 25 and 50, the discrepancy stop 0.3-1.8 below
  and ES-WMV 0.07-2.9 (it fired on 2 of the 12 sigma-50 images); ES-WMV fired early on a third
  of the inpainting images (benchmarks/README.md, "Early stopping")."""
  return "holdout" if task in ("denoise", "inpaint") else "es-wmv"


def auto_stop(config) -> str:
  """What stop 'auto' means: `observed_stop` in observation mode; none for synthetic runs (the
  paper recipes)."""
  return observed_stop(config.task) if config.get("observed") else "none"


def fit_config(config, **changes) -> dip.FitConfig:
  """The `FitConfig` of a config's fit fields (every one of them), with `changes` applied; stop
  'auto' is `auto_stop`; the patience 0 of ES-WMV and the held-out stop is scaled to
  num_steps."""
  values = {**{name: config[name] for name in FIT_FIELDS}, **changes}
  if values["stop"] == "auto":
    values["stop"] = auto_stop(config)
  if values["stop"] in ("es-wmv", "holdout") and not values["es_patience"]:
    values["es_patience"] = early_stop.auto_patience(values["es_window"],
                                                     config.get("num_steps", 0))
  return dip.FitConfig(**values)


def cohort_options(config) -> dict:
  """`fit.cohort.train`'s keyword arguments from a config's execution fields."""
  execution = cohort.resolve_execution(config.execution)
  return dict(execution=execution,
              mesh=None if execution == "loop" else cohort.make_mesh(config.num_devices),
              steps_per_call=config.steps_per_call, loop=config.loop,
              memory_limit_bytes=config.memory_limit_mb * 2**20,
              checkpoint_every=config.checkpoint_every)


def check_rerun(workdir: str, now: dict, may_change=(), defaults: dict | None = None,
                saved_name: str = "config.json") -> None:
  """UserError if `workdir` holds a run whose saved settings differ from `now` in a field not in
  `may_change` (a field missing from an older saved config counts as its value in `defaults`;
  a fit field, as FitConfig's default: runs saved before a fit field existed resume)."""
  path = os.path.join(workdir, saved_name)
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  fit_defaults = {f.name: f.default for f in dataclasses.fields(dip.FitConfig) if f.name in now}
  saved = {**json.loads(json.dumps({**fit_defaults, **(defaults or {})})), **saved}
  changed = files.changed_settings(saved, now, may_change)
  if changed:
    raise UserError(f"{workdir} holds a run with other settings ({', '.join(changed)}); use a "
                    "new --workdir")


def device_info() -> dict:
  """The device and backend lines of a summary."""
  return {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend()}


def write_restoration(out: str, spec, problem, result, index: int, title: str) -> dict:
  """Member `index` of a cohort result restoring `problem`: writes restored.png (final step),
  restored_best.png (oracle best) and psnr.png into out; returns their PSNR, SSIM and best step."""
  final, best = result.final[index], result.best[index]
  image_io.save_png(os.path.join(out, "restored.png"), final)
  image_io.save_png(os.path.join(out, "restored_best.png"), best)
  files.psnr_curve(os.path.join(out, "psnr.png"),
                   {"PSNR vs ground truth": result.curves["psnr"][index]},
                   int(result.best_step[index]), title)
  return {"restored": os.path.join(out, "restored.png"),
          "psnr_final": float(result.curves["psnr"][index, -1]),
          "psnr_best": float(result.best_psnr[index]), "best_step": int(result.best_step[index]),
          "ssim_final": degrade.structural(spec, problem.clean[0], final),
          "ssim_best": degrade.structural(spec, problem.clean[0], best)}
