"""Quality metrics of the references: PSNR on [0, 1] data and NAS-DIP's SR protocol (BT.601 Y
in [16, 235]/255, 4 px off the top/left and 5 px off the bottom/right of the nonzero box); SSIM
beside them (dm-pix: Gaussian window 11 px, sigma 1.5, K1 0.01, K2 0.03, peak 1).

All functions take (..., H, W, C) arrays, are jittable and vmappable, and reduce H, W, C.
"""

import dm_pix
import jax.numpy as jnp

SR_BORDER = 4


def psnr(reference, estimate):
  """10 log10(1 / MSE) over H, W, C with peak 1 and no clipping, as skimage on [0, 1] data."""
  mse = jnp.mean(jnp.square(jnp.asarray(reference, jnp.float32) - estimate), axis=(-3, -2, -1))
  return 10.0 * jnp.log10(1.0 / mse)


def rgb_to_y(x):
  """BT.601 luma scaled to [16, 235] / 255 (cv2 RGB->YCrCb, then (16 + 219 Y) / 255).

  A one-channel image is returned unchanged.
  """
  if x.shape[-1] == 1:
    return x
  y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
  return ((16.0 + 219.0 * y) / 255.0)[..., None]


def sr_crop_mask(estimate, border: int = SR_BORDER):
  """(..., H, W, 1) 0/1 mask of NAS-DIP's SR crop: rows t[0]+b .. t[-1]-b (end excluded), where t
  spans the pixels whose channel sum is nonzero; likewise for columns."""
  nonzero = jnp.sum(estimate, axis=-1) != 0

  def axis_mask(any_along, n):
    idx = jnp.arange(n)
    first = jnp.argmax(any_along, axis=-1)[..., None]
    last = n - 1 - jnp.argmax(any_along[..., ::-1], axis=-1)[..., None]
    return (idx >= first + border) & (idx < last - border)

  h, w = nonzero.shape[-2:]
  rows = axis_mask(jnp.any(nonzero, axis=-1), h)
  cols = axis_mask(jnp.any(nonzero, axis=-2), w)
  return (rows[..., :, None] & cols[..., None, :])[..., None].astype(jnp.float32)


def psnr_sr(reference, estimate, border: int = SR_BORDER):
  """NAS-DIP's super-resolution PSNR: Y channel (RGB) on the border-cropped nonzero box."""
  mask = sr_crop_mask(estimate, border)
  diff = rgb_to_y(jnp.asarray(reference, jnp.float32)) - rgb_to_y(estimate)
  mse = jnp.sum(mask * jnp.square(diff), axis=(-3, -2, -1)) / jnp.sum(mask, axis=(-3, -2, -1))
  return 10.0 * jnp.log10(1.0 / mse)


def ssim(reference, estimate):
  """Mean SSIM over H, W, C (each channel on its own) of [0, 1] data, as scikit-image's
  `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1)`: the valid windows only."""
  return dm_pix.ssim(jnp.asarray(reference, jnp.float32), estimate, max_val=1.0)


def ssim_sr(reference, estimate, border: int = SR_BORDER):
  """SSIM for super-resolution: on the Y channel (as psnr_sr) without `border` px at the top
  and left and border + 1 at the bottom and right (psnr_sr's crop of a nonzero image)."""
  crop = lambda x: rgb_to_y(jnp.asarray(x, jnp.float32))[..., border:-border - 1,
                                                        border:-border - 1, :]
  return ssim(crop(reference), crop(estimate))
