"""Plug-and-play ADMM for min_x 0.5 ||A x - b||^2 + lam G(x): a denoiser as G's proximal map.

  x <- (A^T A + rho I)^{-1} (A^T b + rho (v - u))   jitted: the operator's solve, or CG
  v <- denoise(x + u, sqrt(lam / rho))              any host or device denoiser
  u <- u + x - v

With the proximal map of (lam / 2) ||x||^2 as the "denoiser" (v = y / (1 + lam / rho)) the
iterates converge to the Tikhonov solution (A^T A + lam I)^{-1} A^T b.
"""

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nasdip_jax.baselines import tv_admm
from nasdip_jax.imaging import operators


class PnpResult(NamedTuple):
  image: np.ndarray     # the final v (the denoiser's output), NHWC
  residual: np.ndarray  # (iterations,): ||x - v|| after each iteration


@functools.partial(jax.jit, static_argnums=(0,))
def _data_step(operator, observation, mask, rho, v, u, x):
  rhs = operator.adjoint(observation, mask) + rho * (v - u)
  return tv_admm.data_solve(operator, mask, rho, rhs, x)


def pnp_admm(operator: operators.Operator, observation, mask, denoise: Callable, lam: float,
             rho: float, iterations: int, start=None,
             on_iteration: Callable | None = None) -> PnpResult:
  """`iterations` plug-and-play ADMM rounds from `start` (default A^T b); `denoise(image,
  sigma)` maps NHWC arrays. `on_iteration(i, v)` is called after each round."""
  tv_admm.check(lam, rho, iterations)
  observation = jnp.asarray(observation, jnp.float32)
  mask = jnp.asarray(mask if mask is not None else 1.0, jnp.float32)
  v = operator.adjoint(observation, mask) if start is None else jnp.asarray(start, jnp.float32)
  x, u = v, jnp.zeros_like(v)
  sigma = math.sqrt(lam / rho)
  residuals = []
  for i in range(iterations):
    x = _data_step(operator, observation, mask, jnp.float32(rho), v, u, x)
    v = jnp.asarray(denoise(np.asarray(x + u), sigma), jnp.float32)
    u = u + x - v
    residuals.append(float(jnp.sqrt(jnp.sum(jnp.square(x - v)))))
    if on_iteration is not None:
      on_iteration(i, v)
  return PnpResult(np.asarray(v), np.asarray(residuals, np.float32))
