"""Restoration problems: degrade a clean image, and the forward operator the DIP loss uses.

A `Problem` holds arrays only (a pytree, so cohorts of problems stack and vmap); what is static
(the task and its linear operator from `imaging.operators`) lives in `OperatorSpec`, a hashable
dataclass.
"""

import dataclasses
from typing import Any, NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import io as image_io
from nasdip_jax.imaging import metrics
from nasdip_jax.imaging import operators
from nasdip_jax.imaging import resample

TASKS = ("denoise", "inpaint", "sr", "deblur", "single_pixel")
# the tasks whose operator the caller describes (make_problem's `operator`)
OPERATOR_TASKS = ("deblur", "single_pixel")


@dataclasses.dataclass(frozen=True)
class OperatorSpec:
  """Static description of a task: its forward operator A and its quality metric."""
  task: str
  operator: operators.Operator = operators.Identity()

  @property
  def factor(self) -> int:
    return getattr(self.operator, "factor", 1)

  def apply(self, x, mask):
    """A(x) for NHWC x (the operator's `apply`)."""
    return self.operator.apply(x, mask)

  def quality(self, clean, estimate):
    """PSNR against the ground truth: plain for denoise/inpaint, NAS-DIP's Y-crop for SR."""
    if self.task == "sr":
      return metrics.psnr_sr(clean, estimate)
    return metrics.psnr(clean, estimate)

  def structural(self, clean, estimate):
    """SSIM against the ground truth, on the pixels and channels `quality` measures."""
    if self.task == "sr":
      return metrics.ssim_sr(clean, estimate)
    return metrics.ssim(clean, estimate)


class Problem(NamedTuple):
  """Arrays of one restoration problem, each with a leading batch axis of 1 (NHWC)."""
  observation: np.ndarray  # y: noisy, masked (x * m) or low-resolution image
  clean: np.ndarray        # ground truth at the output resolution
  mask: np.ndarray         # (1, H, W, 1) observed-pixel mask (ones unless inpainting)
  noise_std: Any = None    # (1,) the observation's noise std on [0, 1] (given or estimated),
                           # for the discrepancy stop; None where no run asked for it


def make_problem(clean_u8: np.ndarray, task: str, rng: np.random.Generator, *,
                 sigma: float = 25.0, keep_fraction: float = 0.5,
                 mask_u8: Optional[np.ndarray] = None, factor: int = 4,
                 operator: Optional[operators.Operator] = None, noise_std: float = 0.0
                 ) -> tuple[OperatorSpec, Problem]:
  """Degrades a cropped uint8 (H, W, C) image as the reference scripts do.

  denoise: clip(x + N(0, (sigma/255)^2), 0, 1), float32, not quantised.
  inpaint: mask = U[0,1) > 1 - keep_fraction per pixel (1 = observed), or a given mask image
           (nonzero = observed); observation x * mask.
  sr:      LR = Pillow Lanczos resize of the HR image to exactly HR / factor (uint8).
  deblur, single_pixel: A x + N(0, noise_std^2) for the given `operator` (noise on the [0, 1]
           scale, not clipped; a Hadamard operator's unmeasured coefficients stay 0).
  """
  if task not in TASKS:
    raise UserError(f"unknown task {task!r}; choose from {TASKS}")
  x = image_io.to_float(clean_u8)
  h, w, _ = x.shape
  mask = np.ones((h, w, 1), np.float32)
  if task == "denoise":
    if sigma < 0:
      raise UserError(f"sigma must be >= 0, got {sigma}")
    noisy = x + rng.normal(0.0, sigma / 255.0, x.shape).astype(np.float32)
    y = np.clip(noisy, 0.0, 1.0).astype(np.float32)
    spec = OperatorSpec("denoise", operators.Identity())
  elif task in OPERATOR_TASKS:
    if operator is None:
      raise ValueError(f"task {task!r} needs its operator")
    if noise_std < 0:
      raise UserError(f"noise_std must be >= 0 ([0, 1] scale), got {noise_std}")
    y = np.asarray(operator.apply(jnp.asarray(x[None]), jnp.asarray(mask[None])))[0]
    y = y + rng.normal(0.0, noise_std, y.shape).astype(np.float32)
    if isinstance(operator, operators.Hadamard):
      y = y * operator.selection[:, :, None]
    spec = OperatorSpec(task, operator)
  elif task == "inpaint":
    if mask_u8 is not None:
      if mask_u8.shape[:2] != (h, w):
        raise UserError(f"mask is {mask_u8.shape[1]}x{mask_u8.shape[0]} px but the cropped image "
                        f"is {w}x{h}; give a mask of the image's size")
      mask = (mask_u8[..., :1] > 0).astype(np.float32)
    else:
      if not 0.0 < keep_fraction <= 1.0:
        raise UserError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
      mask = (rng.random((h, w, 1)) > 1.0 - keep_fraction).astype(np.float32)
    y = x * mask
    spec = OperatorSpec("inpaint", operators.Mask())
  else:
    if factor not in (2, 4, 8):
      raise UserError(f"SR factor must be 2, 4 or 8, got {factor}")
    if h % factor or w % factor:
      raise UserError(f"image size {w}x{h} is not divisible by the SR factor {factor}")
    lr = resample.pil_resize(clean_u8, (w // factor, h // factor))
    y = image_io.to_float(lr)
    spec = OperatorSpec("sr", operators.Downsample(factor))
  return spec, Problem(y[None], x[None], mask[None])


def observed_problem(observation: np.ndarray, task: str, multiple: int, *,
                     mask: Optional[np.ndarray] = None, factor: int = 4,
                     operator: Optional[operators.Operator] = None,
                     reference: Optional[np.ndarray] = None
                     ) -> tuple[OperatorSpec, Problem, tuple]:
  """A problem whose observation is given (a real noisy, masked, low-resolution or blurred
  image, float (H, W, C) in [0, 1]); nothing is added to it.

  The observation (and the mask) are reflect-padded at the bottom and right so that the output
  is a multiple of `multiple` px (for SR the output is `factor` times the observation); `clean`
  is the reference padded alike, or zeros without one. Returns (spec, problem, (h, w)): the
  output's size before padding, `[:h, :w]` of an output.
  """
  if task in ("single_pixel",) or task not in TASKS:
    raise UserError(f"task {task!r} cannot restore an observed image; choose from "
                    "('denoise', 'inpaint', 'sr', 'deblur')")
  scale = factor if task == "sr" else 1
  if task == "sr":
    if factor not in (2, 4, 8):
      raise UserError(f"SR factor must be 2, 4 or 8, got {factor}")
    if multiple % factor:
      raise UserError(f"the network's {multiple}-px granularity is not divisible by the SR "
                      f"factor {factor}")
    spec = OperatorSpec("sr", operators.Downsample(factor))
  elif task == "inpaint":
    if mask is None:
      raise UserError("inpainting an observed image needs its mask (--config.mask=mask.png: "
                      "nonzero = observed; or --config.mask_color=R,G,B of the missing pixels)")
    spec = OperatorSpec("inpaint", operators.Mask())
  elif task == "deblur":
    spec = OperatorSpec("deblur", operator)
  else:
    spec = OperatorSpec("denoise", operators.Identity())
  h, w = observation.shape[:2]
  out_h, out_w = h * scale, w * scale
  y = image_io.pad_to_multiple(observation.astype(np.float32), multiple // scale)
  m = (np.ones((h, w, 1), np.float32) if mask is None
       else (np.asarray(mask)[..., :1] > 0).astype(np.float32))
  if m.shape[:2] != (h, w):
    raise UserError(f"the mask is {m.shape[1]}x{m.shape[0]} px but the observation is {w}x{h}")
  m = image_io.pad_to_multiple(m, multiple // scale)
  if task == "inpaint":
    y = y * m
  if reference is None:
    clean = np.zeros((y.shape[0] * scale, y.shape[1] * scale, y.shape[2]), np.float32)
  else:
    if reference.shape != (out_h, out_w, y.shape[2]):
      raise UserError(f"the reference is {reference.shape[1]}x{reference.shape[0]} px with "
                      f"{reference.shape[2]} channels; the output is {out_w}x{out_h} with "
                      f"{y.shape[2]}")
    clean = image_io.pad_to_multiple(reference.astype(np.float32), multiple)
  if isinstance(operator, operators.Blur):
    operator.check_size(*y.shape[:2])
  return spec, Problem(y[None], clean[None], m[None]), (out_h, out_w)


def observation_image(spec: OperatorSpec, problem: Problem) -> np.ndarray:
  """The observation as people look at it: itself, or its back-projection A^T b for
  single-pixel measurements."""
  if spec.task == "single_pixel":
    return np.asarray(spec.operator.adjoint(jnp.asarray(problem.observation),
                                            jnp.asarray(problem.mask)))[0]
  return problem.observation[0]


def baseline_estimate(spec: OperatorSpec, problem: Problem) -> np.ndarray:
  """The trivial restoration to compare against: the observation as people look at it, or
  bicubic for SR."""
  if spec.task != "sr":
    return observation_image(spec, problem)
  y = problem.observation[0]
  h, w = problem.clean.shape[1:3]
  up = resample.pil_resize(image_io.to_uint8(y), (w, h), resample=resample.Image.Resampling.BICUBIC)
  return image_io.to_float(up)


def quality(spec: OperatorSpec, clean, estimate) -> float:
  """Host-side convenience: the task's PSNR of one (H, W, C) estimate."""
  return float(spec.quality(jnp.asarray(clean), jnp.asarray(estimate)))


def structural(spec: OperatorSpec, clean, estimate) -> float:
  """Host-side convenience: the task's SSIM of one (H, W, C) estimate."""
  return float(spec.structural(jnp.asarray(clean), jnp.asarray(estimate)))
