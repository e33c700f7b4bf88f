"""Fit checkpoints with Orbax: the whole `FitState` plus the metric curves so far, written
atomically (Orbax commits a finished directory), the latest kept, restored exactly."""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp


class FitCheckpointer:
  """Saves and restores {state, curves} under `directory` (one step kept)."""

  def __init__(self, directory: str):
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        # synchronous: every save is waited for anyway (and async saves log a warning on
        # each save about waiting for the previous one)
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, state, curves: dict) -> None:
    step = next(iter(curves.values())).shape[-1]
    self._manager.save(step, args=ocp.args.StandardSave({"state": state, "curves": curves}))
    self._manager.wait_until_finished()

  def restore(self, like_state, curve_names):
    """The latest {state, curves}, with `like_state` giving the state's structure and shapes."""
    step = self._manager.latest_step()
    lead = np.shape(like_state.step)
    abstract = {"state": jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state),
                "curves": {k: jax.ShapeDtypeStruct(lead + (step,), np.float32)
                           for k in curve_names}}
    restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return restored["state"], {k: np.asarray(v) for k, v in restored["curves"].items()}

  def close(self) -> None:
    self._manager.close()
