"""Oracle-free early stopping for DIP: ES-WMV and the discrepancy principle.

ES-WMV stops by the windowed moving variance of the outputs (Wang et al., "Early Stopping for
Deep Image Prior", TMLR 2023; its reference notebook ES_WMV.ipynb). The discrepancy principle
(Morozov) stops at the first step whose data fit reaches the noise: mean (A x - y)^2 over the
observed entries <= sigma^2, sigma the observation's noise std (given, or estimated from it).

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

METHODS = ("none", "es-wmv", "discrepancy")
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
  live = full & ~es.stopped
  better = live & (var < es.var_min)
  wait = jnp.where(better, 0, es.wait + live.astype(jnp.int32))
  return EsWmv(
      window=window, leaving=leaving, centre=centre, total=total, norms=norms,
      var_min=jnp.where(better, var, es.var_min),
      step=jnp.where(better, step, es.step), image=jnp.where(better, image, es.image),
      wait=wait, stopped=es.stopped | (live & (wait >= patience))), jnp.where(full, var, jnp.nan)


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
  """Mean squared data-fit error A x - y over the observed entries (mask: inpainting's, 1 =
  observed; None: every entry of y)."""
  if mask is None:
    return jnp.mean(jnp.square(pred - observation))
  weight = jnp.broadcast_to(mask, pred.shape)
  return jnp.sum(weight * jnp.square(pred - observation)) / jnp.maximum(jnp.sum(weight), 1.0)
