"""Oracle-free early stopping for DIP: ES-WMV, the discrepancy principle and a held-out fit.

ES-WMV stops by the windowed moving variance of the outputs (Wang et al., "Early Stopping for
Deep Image Prior", TMLR 2023; its reference notebook ES_WMV.ipynb). The discrepancy principle
(Morozov) stops at the first step whose data fit reaches the noise: mean (A x - y)^2 over the
observed entries <= sigma^2, sigma the observation's noise std (given, or estimated from it).
The held-out stop leaves a random fraction of the observation's entries out of the loss and
tracks their residual mean (A x - y)^2: the network never sees their noise, so that residual is
the error of A x there plus a constant (the noise's variance) and rises once the fit starts
reproducing noise; the answer is the image at its minimum, the stop P steps after it.

After every step the shown image (the fit's output, or its EMA when the fit keeps one) joins a
FIFO window of the last W images. Once the window is full, VAR = mean over the window of
MSE(image, window average). A new minimum of VAR records its step and image; P consecutive steps
without a new minimum stop the criterion (it then freezes). The answer is the image at the
minimum. Everything is a pytree updated inside the jitted step: no host round trip per step.

The reference windows the raw outputs. With DIP's input noise (a fresh perturbation of z every
step) the raw outputs jitter, the more the sharper the network gets, which pulls VAR's minimum
early: on a 128-px CBSD68 crop at sigma 25 (width-16 skip net, EMA 0.99) the raw window stopped
at step 150 (19.4 dB) and the EMA's at step 1499 (26.3 dB, the oracle best).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

METHODS = ("none", "es-wmv", "discrepancy", "holdout")
MAX_AUTO_PATIENCE = 1000  # the reference notebook's P for denoising


class EsWmv(NamedTuple):
  """The criterion's state (leaves of a FitState)."""
  window: jax.Array    # (W,) + image shape: the last W shown images, a ring buffer
  leaving: jax.Array   # the image the next step replaces in the ring
  centre: jax.Array    # r: the window's average at the last exact pass (every W steps)
  total: jax.Array     # sum over the window of (x_i - r)
  norms: jax.Array     # (W,): ||x_i - r||^2 per slot
  var_min: jax.Array   # smallest VAR so far (inf until the window is full)
  step: jax.Array      # the step of that minimum (-1 until the window is full)
  image: jax.Array     # the shown image at that step
  wait: jax.Array      # steps since the minimum
  stopped: jax.Array   # P steps passed without a new minimum: frozen since


def auto_patience(window: int, num_steps: int) -> int:
  """P scaled to the step budget: half of it, at least W and at most the reference's 1000 (the
  reference's value at DIP's 3000-step budgets). A fifth was measured too short: on a CBSD68
  crop at sigma 15 a transient minimum at step 161 fired 300 steps later, 7 dB below the best."""
  return max(window, min(MAX_AUTO_PATIENCE, num_steps // 2))


def init(window: int, image_shape) -> EsWmv:
  zeros = lambda shape: jnp.zeros(shape, jnp.float32)
  return EsWmv(window=zeros((window,) + tuple(image_shape)), leaving=zeros(image_shape),
               centre=zeros(image_shape),
               total=zeros(image_shape), norms=zeros((window,)),
               var_min=jnp.full((), jnp.inf, jnp.float32), step=jnp.full((), -1, jnp.int32),
               image=zeros(image_shape), wait=jnp.zeros((), jnp.int32),
               stopped=jnp.zeros((), bool))


def _exact(window):
  """(centre, total, norms) of the window by a full pass: the average as a matrix-vector
  product (XLA:CPU's reduction over the leading axis is ~20x slower), deviations from it."""
  size = window.shape[0]
  flat = window.reshape(size, -1)
  ones = jnp.full((size,), 1.0, jnp.float32)
  centre = jnp.dot(ones, flat, precision=jax.lax.Precision.HIGHEST) / size
  norms = jnp.sum(jnp.square(flat - centre), axis=1)
  return (centre.reshape(window.shape[1:]), jnp.zeros(window.shape[1:], jnp.float32), norms)


def update(es: EsWmv, step, image, patience: int):
  """The criterion after step `step` (0-based) showed `image`; returns (state, VAR of this step:
  NaN until the window is full).

  VAR = sum_i ||x_i - r||^2 / (W N) - ||mean_i (x_i - r)||^2 / N for any r: sums kept up to date
  per step in O(N) (N = pixels x channels), r and the sums recomputed by a full pass whenever
  the ring wraps (every W steps), so r stays near the window's average and the difference
  loses no precision.
  """
  size = es.window.shape[0]
  image = image.astype(jnp.float32)
  slot = step % size

  # The ring is only written before it is read (the leaving image was read a step earlier):
  # reading it before the write made XLA copy the whole window twice per step.
  old = es.leaving
  window = jax.lax.dynamic_update_index_in_dim(es.window, image, slot, 0)
  leaving = jax.lax.dynamic_index_in_dim(window, (slot + 1) % size, 0, keepdims=False)

  def incremental():
    new = image - es.centre
    return (es.centre, es.total + new - (old - es.centre),
            es.norms.at[slot].set(jnp.sum(jnp.square(new))))

  centre, total, norms = jax.lax.cond(slot == 0, lambda: _exact(window), incremental)
  n = image.size
  var = jnp.sum(norms) / (size * n) - jnp.sum(jnp.square(total / size)) / n
  full = step >= size - 1
  var_min, best_step, best_image, wait, stopped = _track_minimum(
      (es.var_min, es.step, es.image, es.wait, es.stopped), full, step, image, var, patience)
  return EsWmv(window=window, leaving=leaving, centre=centre, total=total, norms=norms,
               var_min=var_min, step=best_step, image=best_image, wait=wait,
               stopped=stopped), jnp.where(full, var, jnp.nan)


def _track_minimum(tracked, valid, step, image, value, patience: int):
  """(minimum, its step, its image, wait, stopped) after `step` gave `value` (counted only where
  `valid`): a new minimum records the step and image; P steps without one stop (then frozen)."""
  value_min, best_step, best_image, wait, stopped = tracked
  live = valid & ~stopped
  better = live & (value < value_min)
  wait = jnp.where(better, 0, wait + live.astype(jnp.int32))
  return (jnp.where(better, value, value_min), jnp.where(better, step, best_step),
          jnp.where(better, image, best_image), wait, stopped | (live & (wait >= patience)))


class Holdout(NamedTuple):
  """The held-out stop's state (leaves of a FitState)."""
  residual_min: jax.Array  # smallest held-out residual so far
  step: jax.Array          # the step of that minimum
  image: jax.Array         # the shown image at that step
  wait: jax.Array          # steps since the minimum
  stopped: jax.Array       # P steps passed without a new minimum: frozen since


def init_holdout(image_shape) -> Holdout:
  return Holdout(residual_min=jnp.full((), jnp.inf, jnp.float32),
                 step=jnp.full((), -1, jnp.int32), image=jnp.zeros(image_shape, jnp.float32),
                 wait=jnp.zeros((), jnp.int32), stopped=jnp.zeros((), bool))


def update_holdout(state: Holdout, step, image, held_out_residual, patience: int) -> Holdout:
  """After step `step` showed `image` whose residual over the held-out entries is
  `held_out_residual`."""
  return Holdout(*_track_minimum(tuple(state), jnp.ones((), bool), step,
                                 image.astype(jnp.float32), held_out_residual, patience))


def holdout_mask(key, shape, fraction: float):
  """1.0 on a random `fraction` of the entries of an observation of `shape` (held out), else 0."""
  return jax.random.bernoulli(key, fraction, shape).astype(jnp.float32)


class Discrepancy(NamedTuple):
  """The discrepancy stop's state (leaves of a FitState): the answer so far."""
  step: jax.Array      # the last step before the stop (the stop step once stopped)
  image: jax.Array     # the shown image at that step
  stopped: jax.Array   # the residual reached the noise level at `step`: frozen since


def init_discrepancy(image_shape) -> Discrepancy:
  return Discrepancy(step=jnp.full((), -1, jnp.int32),
                     image=jnp.zeros(image_shape, jnp.float32), stopped=jnp.zeros((), bool))


def update_discrepancy(state: Discrepancy, step, image, residual, noise_var) -> Discrepancy:
  """After step `step` showed `image` with data-fit residual `residual` (mean squared, over the
  observed entries): until the stop, the answer is this step's image; the first step with
  residual <= noise_var stops the criterion there."""
  live = ~state.stopped
  return Discrepancy(step=jnp.where(live, step, state.step),
                     image=jnp.where(live, image.astype(jnp.float32), state.image),
                     stopped=state.stopped | (residual <= noise_var))


def residual(pred, observation, mask=None):
  """Mean squared data-fit error A x - y over the entries where `mask` is 1 (inpainting's
  observed pixels, held-out entries; broadcast to y's shape) or (None) over every entry of y."""
  if mask is None:
    return jnp.mean(jnp.square(pred - observation))
  weight = jnp.broadcast_to(mask, pred.shape)
  return jnp.sum(weight * jnp.square(pred - observation)) / jnp.maximum(jnp.sum(weight), 1.0)
