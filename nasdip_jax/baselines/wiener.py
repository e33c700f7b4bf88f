"""Wiener deconvolution with the classical constant noise-to-signal ratio (NSR)."""

import jax.numpy as jnp
import numpy as np

from nasdip_jax.imaging import operators

MIN_NSR = 1e-6  # a noiseless observation: keeps the inverse of a Gaussian's tiny gains finite


def nsr_estimate(observation, noise_std: float) -> float:
  """sigma^2 / var(b): the noise power over the observation's (the signal's estimate), at least
  MIN_NSR."""
  return max(noise_std ** 2 / max(float(np.var(observation)), 1e-12), MIN_NSR)


def wiener(blur: operators.Blur, observation, nsr: float):
  """X = conj(K) B / (|K|^2 + nsr) per channel of the NHWC observation, K the kernel's transfer
  function on the periodic image grid (whatever the blur's boundary rule), clipped to [0, 1]."""
  h, w = observation.shape[1:3]
  otf = blur.otf(h, w)
  gain = np.conj(otf) / (np.abs(otf) ** 2 + nsr)
  y = jnp.asarray(observation, jnp.float32)
  spectrum = jnp.fft.rfft2(y, axes=(1, 2)) * jnp.asarray(gain.astype(np.complex64))[None, :, :, None]
  return jnp.clip(jnp.fft.irfft2(spectrum, s=(h, w), axes=(1, 2)), 0.0, 1.0).astype(jnp.float32)
