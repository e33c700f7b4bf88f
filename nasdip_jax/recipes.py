"""The restore tasks' reference recipes, defined once: configs/*.py and the Python API
(`nasdip_jax.restore`) start from `restore_config`."""

import ml_collections

from nasdip_jax.fit import dip
from nasdip_jax.runs import restore

SR_FACTORS = (2, 4, 8)


def dip_denoising(c: ml_collections.ConfigDict) -> None:
  """DIP's denoising recipe (the reference's denoising script), which the operator tasks use too:
  3000 steps of Adam at 0.01, input noise 1/30 (FitConfig's default), EMA 0.99 of outputs (PSNR
  measured on the EMA), divergence guard at 5 dB."""
  c.num_steps = 3000
  c.lr = 0.01
  c.reg_noise_std = dip.FitConfig.reg_noise_std
  c.ema_decay = 0.99
  c.backtrack_db = 5.0


def study_dip(c: ml_collections.ConfigDict) -> None:
  """The network-structure study's DIP: DIP's denoising recipe (`dip_denoising`) on the skip
  network, its step count left to the study's scale."""
  dip_denoising(c)
  c.num_steps = 0


def restore_config(task: str, factor: int = 4) -> ml_collections.ConfigDict:
  """A restore run of `task` with its reference recipe (see configs/*.py for each one's source).

  denoise: sigma 25, RGB, `dip_denoising`, the held-out stop refitted. inpaint: 50% of pixels
  kept, grayscale, 11000 steps of Adam at 0.001, input noise 0.03. sr: RGB, 2000 steps (x8:
  4000) of Adam at 0.01, input noise 0.03 (x8: 0.05). deblur: Gaussian blur sigma 5 px
  (circular), noise 0.01, grayscale, `dip_denoising`. single_pixel: CF 4 Walsh-Hadamard,
  grayscale, `dip_denoising`.
  """
  c = restore.base_config()
  c.task = task
  if task == "denoise":
    c.channels, c.sigma = "rgb", 25.0
    c.holdout_refit = True  # the held-out stop (observed denoising's) answers a refit to its step
    dip_denoising(c)
  elif task == "inpaint":
    c.channels, c.keep_fraction = "gray", 0.5
    c.num_steps, c.lr, c.reg_noise_std = 11000, 0.001, 0.03
  elif task == "sr":
    c.channels, c.factor = "rgb", factor
    c.num_steps, c.lr = (4000 if factor == 8 else 2000), 0.01
    c.reg_noise_std = 0.05 if factor == 8 else 0.03
  elif task == "deblur":
    c.channels, c.blur_sigma, c.boundary, c.noise_std = "gray", 5.0, "circular", 0.01
    dip_denoising(c)
  elif task == "single_pixel":
    c.channels, c.compression, c.sensing = "gray", 4.0, "hadamard"
    dip_denoising(c)
  else:
    raise ValueError(f"unknown task {task!r}")
  return c
