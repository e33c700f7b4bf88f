"""Plug-and-play ADMM for min_x 0.5 ||A x - b||^2 + lam G(x): a denoiser as G's proximal map.

  x <- (A^T A + rho I)^{-1} (A^T b + rho (v - u))   jitted: the operator's solve, or CG
  v <- denoise(x + u, sqrt(lam / rho))              any host or device denoiser
  u <- u + x - v
  rho <- growth rho,  u <- u / growth               continuation (growth 1: a fixed rho)

Continuation (Chan, Wang and Elgendy, "Plug-and-Play ADMM for Image Restoration", 2017) starts
the denoiser strong, to fill what A does not measure, and weakens it round by round; u is the
scaled dual (multiplier / rho), so it is rescaled with rho. With the proximal map of
(lam / 2) ||x||^2 as the "denoiser" (v = y / (1 + sigma^2)) the iterates converge to the Tikhonov
solution (A^T A + lam I)^{-1} A^T b, whatever the growth.
"""

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nasdip_jax.baselines import tv_admm
from nasdip_jax.errors import UserError
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
             on_iteration: Callable | None = None, rho_growth: float = 1.0) -> PnpResult:
  """`iterations` plug-and-play ADMM rounds from `start` (default A^T b), rho multiplied by
  `rho_growth` after each; `denoise(image, sigma)` maps NHWC arrays. `on_iteration(i, v)` is
  called after each round."""
  tv_admm.check(lam, rho, iterations)
  check_growth(rho_growth)
  observation = jnp.asarray(observation, jnp.float32)
  mask = jnp.asarray(mask if mask is not None else 1.0, jnp.float32)
  v = operator.adjoint(observation, mask) if start is None else jnp.asarray(start, jnp.float32)
  x, u = v, jnp.zeros_like(v)
  residuals = []
  for i in range(iterations):
    x = _data_step(operator, observation, mask, jnp.float32(rho), v, u, x)
    v = jnp.asarray(denoise(np.asarray(x + u), math.sqrt(lam / rho)), jnp.float32)
    u = (u + x - v) / rho_growth
    rho *= rho_growth
    residuals.append(float(jnp.sqrt(jnp.sum(jnp.square(x - v)))))
    if on_iteration is not None:
      on_iteration(i, v)
  return PnpResult(np.asarray(v), np.asarray(residuals, np.float32))


def check_growth(rho_growth: float, name: str = "rho_growth") -> None:
  """UserError unless the growth of rho per round (`name` in the message) is at least 1."""
  if not rho_growth >= 1.0:
    raise UserError(f"{name} must be >= 1 (1: a fixed rho), got {rho_growth}")
