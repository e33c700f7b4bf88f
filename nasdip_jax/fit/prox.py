"""DIP as the proximal step of plug-and-play ADMM (`baselines.pnp_admm`; the study's "NS" single-
pixel solver): the network is fitted for K steps to the current iterate (denoising, A = I), warm-
started from the previous round's parameters and Adam state, and its shown image (the EMA when
on) is the denoised iterate. K = 0 fits nothing and returns the iterate unchanged.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade


class DipProx:
  """`prox(image, sigma) -> image` (NHWC, [0, 1]); sigma is ignored: the step count K and the
  warm start are DIP's regularisation."""

  def __init__(self, build, cfg: dip.FitConfig, shape, steps_per_round: int, key):
    """build(key) -> an nnx network of input_depth -> shape[-1] channels; shape (1, H, W, C).
    cfg.backtrack_db must be 0: the divergence guard compares each step's fit against the last
    one's for a fixed target, and the prox's target changes every round (with the guard, the
    study's single-pixel NS fell to 11 dB on the logo at CF 1, 42 dB without)."""
    if steps_per_round < 0:
      raise ValueError(f"steps_per_round must be >= 0, got {steps_per_round}")
    if cfg.backtrack_db > 0:
      raise ValueError("DipProx needs backtrack_db=0: the prox's target changes every round, "
                       f"which the divergence guard would take for divergence (got "
                       f"{cfg.backtrack_db})")
    self.steps = steps_per_round
    init_key, data_key = jax.random.split(key)
    graphdef, params = nnx.split(build(init_key), nnx.Param)
    blank = np.zeros(shape, np.float32)
    problem = degrade.Problem(blank, blank, np.ones(shape[:3] + (1,), np.float32))
    self._spec = degrade.OperatorSpec("denoise")
    tx = dip.make_optimizer(cfg)
    self._data = dip.init_data(data_key, problem, cfg)
    self._state = dip.init_state(params, tx, problem, cfg)
    self._compiled = dip.compile_single_fit(graphdef, self._spec, cfg, self._state,
                                            self._data, max(steps_per_round, 1))

  def __call__(self, image, sigma=None):
    del sigma
    if self.steps == 0:
      return np.asarray(image, np.float32)
    y = jnp.asarray(image, jnp.float32)
    problem = self._data.problem._replace(observation=y, clean=y)
    self._state, _ = self._compiled.run(self._state, self._data._replace(problem=problem),
                                        self.steps)
    return np.asarray(self._state.shown)
