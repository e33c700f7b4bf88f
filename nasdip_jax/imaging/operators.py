"""Linear forward operators A of restoration problems: small hashable descriptions + pure JAX.

Every operator is a frozen dataclass (a static argument of compiled programs, so equal
descriptions share programs) with
  apply(x, mask)       A x for NHWC x;
  adjoint(y, mask)     A^T y (`jax.linear_transpose` of `apply` unless a closed form is simpler);
  solve(r, rho, mask)  (A^T A + rho I)^{-1} r where that has a closed form (`has_solve`): elementwise
                       for masks, diagonal in the Fourier domain for circular blur, in the transform
                       domain for row-subsampled orthonormal transforms.
`mask` is the problem's observed-pixel mask (data, so cohorts of problems stack it); only `Mask`
reads it. Constants an operator needs (a transfer function, a row selection) are derived from its
description with numpy at trace time. Noise is not part of A: observations are A x + n.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import resample

_HIGHEST = jax.lax.Precision.HIGHEST


class Operator:
  """The interface; subclasses are frozen dataclasses."""
  has_solve = False

  def apply(self, x, mask):
    raise NotImplementedError

  def input_shape(self, y_shape):
    """The shape of x for an observation of shape y_shape."""
    return tuple(y_shape)

  def adjoint(self, y, mask):
    x_like = jax.ShapeDtypeStruct(self.input_shape(y.shape), y.dtype)
    (x,) = jax.linear_transpose(lambda x: self.apply(x, mask), x_like)(y)
    return x

  def solve(self, r, rho, mask):
    raise NotImplementedError(f"{type(self).__name__} has no closed-form (A^T A + rho I) solve")


@dataclasses.dataclass(frozen=True)
class Identity(Operator):
  has_solve = True

  def apply(self, x, mask):
    return x

  def adjoint(self, y, mask):
    return y

  def solve(self, r, rho, mask):
    return r / (1.0 + rho)


@dataclasses.dataclass(frozen=True)
class Mask(Operator):
  """Inpainting: x * mask (1 = observed)."""
  has_solve = True

  def apply(self, x, mask):
    return x * mask

  def adjoint(self, y, mask):
    return y * mask

  def solve(self, r, rho, mask):
    return r / (mask * mask + rho)


@dataclasses.dataclass(frozen=True)
class Downsample(Operator):
  """Super-resolution: DIP's Lanczos-2 downsampler by `factor`."""
  factor: int

  def apply(self, x, mask):
    return resample.lanczos2_downsample(x, self.factor)

  def input_shape(self, y_shape):
    n, h, w, c = y_shape
    return (n, h * self.factor, w * self.factor, c)


BOUNDARIES = ("circular", "reflect")


def gaussian_kernel(sigma: float, size: int = 0) -> np.ndarray:
  """The normalised (size x size) Gaussian of std `sigma` px; size 0 = 2 ceil(3 sigma) + 1."""
  if sigma <= 0:
    raise UserError(f"blur sigma must be > 0, got {sigma}")
  size = size or 2 * math.ceil(3 * sigma) + 1
  t = np.arange(size) - (size - 1) / 2.0
  g = np.exp(-t ** 2 / (2.0 * sigma ** 2))
  k = np.outer(g, g)
  return k / k.sum()


@dataclasses.dataclass(frozen=True)
class Blur(Operator):
  """Deconvolution: convolution with a normalised kernel (centre at (k_h // 2, k_w // 2)).

  boundary 'circular': periodic (FFT), with closed-form adjoint and solve; 'reflect': the image
  mirrored about its edge pixels (scipy.ndimage mode 'reflect'), a spatial convolution.
  """
  kernel: tuple  # rows of floats, summing to 1
  boundary: str = "circular"

  @classmethod
  def of(cls, kernel: np.ndarray, boundary: str = "circular") -> "Blur":
    k = np.asarray(kernel, np.float64)
    if k.ndim != 2 or not np.all(np.isfinite(k)) or k.sum() <= 0 or np.any(k < 0):
      raise UserError("a blur kernel must be a finite, non-negative 2-D array with a positive sum")
    if boundary not in BOUNDARIES:
      raise UserError(f"blur boundary must be one of {BOUNDARIES}, got {boundary!r}")
    k = k / k.sum()
    return cls(tuple(tuple(float(v) for v in row) for row in k), boundary)

  @property
  def array(self) -> np.ndarray:
    return np.asarray(self.kernel, np.float64)

  def check_size(self, h: int, w: int) -> None:
    """UserError if the kernel is larger than an (h, w) image."""
    kh, kw = self.array.shape
    if kh > h or kw > w:
      raise UserError(f"the blur kernel ({kw}x{kh} px) is larger than the image ({w}x{h} px)")

  def otf(self, h: int, w: int) -> np.ndarray:
    """The transfer function on an (h, w) periodic grid: rfft2 of the centred kernel."""
    self.check_size(h, w)
    return _otf(self.kernel, h, w)

  def _fourier(self, x, factor):
    h, w = x.shape[1:3]
    spectrum = jnp.fft.rfft2(x, axes=(1, 2)) * factor[None, :, :, None]
    return jnp.fft.irfft2(spectrum, s=(h, w), axes=(1, 2)).astype(x.dtype)

  def apply(self, x, mask):
    self.check_size(*x.shape[1:3])
    if self.boundary == "circular":
      return self._fourier(x, jnp.asarray(self.otf(*x.shape[1:3])))
    k = self.array
    kh, kw = k.shape
    top, left = kh // 2, kw // 2
    xp = jnp.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)),
                 mode="symmetric")
    c = x.shape[-1]
    # conv_general_dilated correlates: flip the kernel to convolve.
    w = jnp.asarray(np.tile(k[::-1, ::-1].astype(np.float32)[:, :, None, None], (1, 1, 1, c)))
    return jax.lax.conv_general_dilated(
        xp, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c, precision=_HIGHEST)

  def adjoint(self, y, mask):
    if self.boundary == "circular":
      return self._fourier(y, jnp.asarray(np.conj(self.otf(*y.shape[1:3]))))
    return super().adjoint(y, mask)

  @property
  def has_solve(self):
    return self.boundary == "circular"

  def solve(self, r, rho, mask):
    if self.boundary != "circular":
      return super().solve(r, rho, mask)
    otf = self.otf(*r.shape[1:3])
    return self._fourier(r, jnp.asarray(1.0 / (np.abs(otf) ** 2 + rho)))


@functools.lru_cache(maxsize=16)
def _otf(kernel: tuple, h: int, w: int) -> np.ndarray:
  """rfft2 of the kernel zero-padded to (h, w) with its centre at the origin (complex64)."""
  k = np.asarray(kernel, np.float64)
  kh, kw = k.shape
  psf = np.zeros((h, w))
  psf[:kh, :kw] = k
  psf = np.roll(psf, (-(kh // 2), -(kw // 2)), axis=(0, 1))
  return np.fft.rfft2(psf).astype(np.complex64)


def measurement_count(num_pixels: int, compression: float) -> int:
  """M = N / CF measurements (rounded), at least 1."""
  if not compression >= 1:
    raise UserError(f"the compression factor must be >= 1, got {compression}")
  m = int(round(num_pixels / compression))
  if m < 1:
    raise UserError(f"compression factor {compression} leaves no measurement of a "
                    f"{num_pixels}-pixel image")
  return m


def _check_power_of_two(h: int, w: int) -> None:
  for n in (h, w):
    if n < 1 or n & (n - 1):
      raise UserError(
          f"the Hadamard operator needs power-of-two sides; the image is {w}x{h} px: crop it to "
          f"{1 << (w.bit_length() - 1)}x{1 << (h.bit_length() - 1)} (e.g. --config.crop_size)")


@dataclasses.dataclass(frozen=True)
class Hadamard(Operator):
  """Single-pixel imaging: M rows of the orthonormal 2-D Walsh-Hadamard transform (Sylvester
  order, separable: H_h X H_w / sqrt(h w) per channel). The DC row is always kept; the other
  M - 1 are drawn without replacement by `seed`; with `permute`, a fixed random pixel
  permutation (same seed) comes first ("scrambled Hadamard").

  A x is returned zero-filled in the (h, w) transform domain (unmeasured coefficients are 0), so
  ||A x - b||^2 is the sum over the M measurements and A A^T = I on them.
  """
  height: int
  width: int
  measurements: int
  seed: int = 0
  permute: bool = False
  has_solve = True

  def __post_init__(self):
    _check_power_of_two(self.height, self.width)
    n = self.height * self.width
    if not 1 <= self.measurements <= n:
      raise UserError(f"Hadamard measurements must be in [1, {n}], got {self.measurements}")

  @property
  def selection(self) -> np.ndarray:
    """The (h, w) float32 0/1 map of measured transform coefficients (M ones)."""
    return _hadamard_selection(self.height, self.width, self.measurements, self.seed)

  @property
  def permutation(self):
    if not self.permute:
      return None
    return np.random.default_rng([self.seed, 1]).permutation(self.height * self.width)

  def _transform(self, x):
    """The orthonormal, symmetric, self-inverse 2-D transform of NHWC x."""
    hh = jnp.asarray(_sylvester(self.height))
    hw = jnp.asarray(_sylvester(self.width))
    return jnp.einsum("ij,njkc,kl->nilc", hh, x, hw, precision=_HIGHEST)

  def _permute(self, x, inverse=False):
    p = self.permutation
    if p is None:
      return x
    if inverse:
      p = np.argsort(p)
    n, h, w, c = x.shape
    return x.reshape(n, h * w, c)[:, p].reshape(n, h, w, c)

  def apply(self, x, mask):
    return self._transform(self._permute(x)) * jnp.asarray(self.selection)[None, :, :, None]

  def adjoint(self, y, mask):
    s = jnp.asarray(self.selection)[None, :, :, None]
    return self._permute(self._transform(y * s), inverse=True)

  def solve(self, r, rho, mask):
    s = jnp.asarray(self.selection)[None, :, :, None]
    return self._permute(self._transform(self._transform(self._permute(r)) / (s + rho)),
                         inverse=True)


@functools.lru_cache(maxsize=8)
def _sylvester(n: int) -> np.ndarray:
  return (scipy.linalg.hadamard(n) / np.sqrt(n)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _hadamard_selection(h: int, w: int, m: int, seed: int) -> np.ndarray:
  others = np.random.default_rng([seed, 0]).choice(h * w - 1, m - 1, replace=False) + 1
  sel = np.zeros(h * w, np.float32)
  sel[0] = 1.0
  sel[others] = 1.0
  return sel.reshape(h, w)


MAX_DENSE_ENTRIES = 1 << 24  # a 64x64 image at CF 1: 16.8M float32 entries, 64 MiB


@dataclasses.dataclass(frozen=True)
class RandomDense(Operator):
  """Single-pixel imaging with a dense i.i.d. +-1/sqrt(M) matrix (M x N, seeded), for small
  images. A x has shape (n, M, 1, c): each channel measured by the same matrix."""
  height: int
  width: int
  measurements: int
  seed: int = 0

  def __post_init__(self):
    n = self.height * self.width
    if not 1 <= self.measurements <= n:
      raise UserError(f"dense measurements must be in [1, {n}], got {self.measurements}")
    if self.measurements * n > MAX_DENSE_ENTRIES:
      raise UserError(f"a dense {self.measurements}x{n} matrix is too large (over "
                      f"{MAX_DENSE_ENTRIES} entries); use the Hadamard operator or a smaller image")

  @property
  def matrix(self) -> np.ndarray:
    return _dense_matrix(self.height * self.width, self.measurements, self.seed)

  def input_shape(self, y_shape):
    return (y_shape[0], self.height, self.width, y_shape[-1])

  def apply(self, x, mask):
    n, h, w, c = x.shape
    y = jnp.einsum("mp,npc->nmc", jnp.asarray(self.matrix), x.reshape(n, h * w, c),
                   precision=_HIGHEST)
    return y[:, :, None, :]

  def adjoint(self, y, mask):
    n, c = y.shape[0], y.shape[-1]
    x = jnp.einsum("mp,nmc->npc", jnp.asarray(self.matrix), y[:, :, 0, :], precision=_HIGHEST)
    return x.reshape(n, self.height, self.width, c)


@functools.lru_cache(maxsize=4)
def _dense_matrix(n: int, m: int, seed: int) -> np.ndarray:
  signs = np.random.default_rng([seed, 2]).integers(0, 2, (m, n)) * 2 - 1
  return (signs / np.sqrt(m)).astype(np.float32)
