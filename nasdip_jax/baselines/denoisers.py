"""Gaussian denoisers as plain restorations and as the proximal step of plug-and-play ADMM.

Each is `denoise(image, sigma) -> image` on NHWC float arrays in [0, 1], sigma the noise
standard deviation on that scale (plug-and-play passes sqrt(lam / rho)); colour images are
denoised jointly where the method has a colour form (CBM3D, NLM over channels).
"""

import numpy as np

from nasdip_jax.errors import UserError

NLM_H_PER_SIGMA = 0.8  # the study's choice: h = 0.8 sigma, patch 7, search distance 11
NLM_PATCH, NLM_DISTANCE = 7, 11
BM3D_INSTALL = 'pip install -e ".[bm3d]"'


def _per_image(fn, image):
  image = np.asarray(image, np.float32)
  out = [fn(im[..., 0] if im.shape[-1] == 1 else im) for im in image]
  return np.stack([o.reshape(image.shape[1:]) for o in out]).astype(np.float32)


def nlm(image, sigma: float):
  """scikit-image's non-local means (fast mode), h = 0.8 sigma, patch 7, distance 11."""
  from skimage.restoration import denoise_nl_means  # pylint: disable=import-outside-toplevel
  channel_axis = -1 if np.shape(image)[-1] > 1 else None
  return _per_image(lambda im: denoise_nl_means(
      im, h=NLM_H_PER_SIGMA * sigma, sigma=sigma, patch_size=NLM_PATCH,
      patch_distance=NLM_DISTANCE, fast_mode=True, channel_axis=channel_axis), image)


def tv(image, sigma: float):
  """The exact TV proximal map (scikit-image's Chambolle) with weight sigma^2, i.e. lam / rho in
  plug-and-play, per channel."""
  from skimage.restoration import denoise_tv_chambolle  # pylint: disable=import-outside-toplevel
  channel_axis = -1 if np.shape(image)[-1] > 1 else None
  return _per_image(lambda im: denoise_tv_chambolle(
      im.astype(np.float64), weight=sigma ** 2, eps=1e-5, max_num_iter=500,
      channel_axis=channel_axis), image)


def bm3d_module():
  """The optional `bm3d` package, or a UserError that says how to install it."""
  try:
    import bm3d  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError("BM3D needs the optional bm3d package (non-commercial licence): "
                    f"{BM3D_INSTALL}") from None
  return bm3d


def bm3d(image, sigma: float):
  """BM3D (grayscale) or CBM3D (RGB) from the `bm3d` package, sigma_psd = sigma."""
  module = bm3d_module()
  fn = module.bm3d_rgb if np.shape(image)[-1] == 3 else module.bm3d
  return _per_image(lambda im: np.asarray(fn(im, sigma_psd=sigma)), image)


DENOISERS = {"nlm": nlm, "tv": tv, "bm3d": bm3d}


def get(name: str):
  """The denoiser called `name`; a UserError for unknown names (and for bm3d without its
  package)."""
  if name not in DENOISERS:
    raise UserError(f"unknown denoiser {name!r}; choose one of {sorted(DENOISERS)}")
  if name == "bm3d":
    bm3d_module()
  return DENOISERS[name]
