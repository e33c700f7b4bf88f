"""`nasdip_jax.restore`: restore one observed image from Python (notebooks, other programs).

    import nasdip_jax
    result = nasdip_jax.restore(noisy, task="denoise")      # noisy: (H, W[, C]) array or a path
    result.image                                            # the restored (H, W, C) float array
    result.stop_step, result.curves["residual"], result.summary  # where it stopped, and why

It runs exactly what `python -m nasdip_jax.main --config=configs/<task>.py --config.observed=true
--config.image=...` runs (the same recipe, fields and seed give the same result).
"""

import dataclasses
import json
import os
import tempfile
from typing import Optional, Union

import numpy as np
from PIL import Image

from nasdip_jax import recipes
from nasdip_jax.errors import UserError
from nasdip_jax.runs import restore as restore_run

Array = Union[np.ndarray, str]


@dataclasses.dataclass
class RestoreResult:
  """What `restore` returns."""
  image: np.ndarray        # (H, W, C) float32 in [0, 1]: the answer (the stop's, or final)
  final: np.ndarray        # the last step's image
  stop_step: Optional[int]  # the step of `image` (None with stop='none')
  curves: dict             # per-step loss, psnr_obs, residual (data fit), holdout (the held-out
                           # entries' fit), wmv (ES-WMV); psnr with a reference
  summary: dict            # the run's summary.json
  workdir: str             # where the run wrote everything


def _as_file(value, directory: str, name: str, kind: str) -> str:
  """A path for `value`: a path as given, or an array saved into directory (images and
  kernels as .npy, masks as a PNG: nonzero = observed)."""
  if isinstance(value, (str, os.PathLike)):
    return os.fspath(value)
  a = np.asarray(value)
  if kind == "mask":
    a = a.reshape(a.shape[0], a.shape[1], -1).any(axis=-1)
    path = os.path.join(directory, name + ".png")
    Image.fromarray((a * 255).astype(np.uint8)).save(path)
    return path
  if kind == "image" and a.dtype not in (np.uint8, np.float32, np.float64):
    raise UserError(f"the {name} array must be uint8 or float in [0, 1], got {a.dtype}")
  path = os.path.join(directory, name + ".npy")
  np.save(path, a)
  return path


def restore(observation: Array, task: str = "denoise", *, mask: Optional[Array] = None,
            factor: int = 4, kernel: Optional[Array] = None, reference: Optional[Array] = None,
            steps: Optional[int] = None, stop: str = "auto", seed: int = 0,
            workdir: Optional[str] = None, **fields) -> RestoreResult:
  """Restores an observed image with DIP and the task's reference recipe.

  Args:
    observation: the noisy / masked / low-resolution / blurred image: an (H, W) or (H, W, C)
      array (uint8, or float in [0, 1]; any number of channels where the task allows) or a path.
    task: denoise | inpaint | sr | deblur.
    mask: inpaint: nonzero = observed (array or path). factor: sr's factor (output = factor x).
    kernel: deblur: the blur kernel (2-D array or path); default the recipe's Gaussian.
    reference: the ground truth (the output's size), for PSNR / SSIM in `summary` and `curves`.
    steps: the step budget (default: the recipe's). stop: auto (denoise, inpaint: holdout;
      else es-wmv) | holdout | discrepancy | es-wmv | none; `holdout_fraction=` the share of
      the observation the held-out stop leaves out of the loss (0.1); for denoising its answer
      is a second, same-seed fit of all of the observation to its step (`holdout_refit=False`:
      the held-out fit's own image, the other tasks' default; `curves` are the held-out
      fit's); `stop_sigma=` the noise level (0..255) that the discrepancy stop otherwise
      estimates.
    seed: initialisation, z and input noise. workdir: where to write (default: a temp folder).
    **fields: any other config field (e.g. input_depth=8, net={'channels_down': (8,) * 3}).
  """
  if task not in ("denoise", "inpaint", "sr", "deblur"):
    raise UserError(f"task must be one of ('denoise', 'inpaint', 'sr', 'deblur'), got {task!r}")
  workdir = workdir or tempfile.mkdtemp(prefix=f"nasdip_{task}_")
  inputs = os.path.join(workdir, "inputs")
  os.makedirs(inputs, exist_ok=True)
  config = recipes.restore_config(task, factor=factor if task == "sr" else 4)
  config.observed, config.seed, config.stop = True, seed, stop
  config.image = _as_file(observation, inputs, "observation", "image")
  if mask is not None:
    config.mask = _as_file(mask, inputs, "mask", "mask")
  if kernel is not None:
    config.kernel = _as_file(kernel, inputs, "kernel", "kernel")
  if reference is not None:
    config.reference = _as_file(reference, inputs, "reference", "image")
  if steps is not None:
    config.num_steps = steps
  nets = fields.pop("net", {})
  config.update(fields)
  config.net.update(nets)
  config.channels = fields.get("channels", _channels(config.image, config.channels))
  summary = restore_run.run(config, workdir)
  with np.load(os.path.join(workdir, "curves.npz")) as z:
    curves = {k: z[k] for k in z.files}
  image = np.load(os.path.join(workdir, "restored.npy"))
  final_path = os.path.join(workdir, "restored_final.npy")
  return RestoreResult(image=image,
                       final=np.load(final_path) if os.path.exists(final_path) else image,
                       stop_step=summary.get("stop_step"), curves=curves,
                       summary=json.loads(json.dumps(summary)), workdir=workdir)


def _channels(path: str, default: str) -> str:
  """'gray' for a grayscale image file, 'rgb' for an RGB one (arrays take any channels)."""
  if path.endswith((".npy", ".npz")) or not os.path.isfile(path):
    return default
  try:
    with Image.open(path) as img:
      return {"L": "gray", "RGB": "rgb"}.get(img.mode, default)
  except OSError:
    return default  # the run reports what is wrong with the file
