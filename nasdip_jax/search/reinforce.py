"""REINFORCE for the NAS-DIP controller (AutoGAN's recipe) and the resumable search loop.

    cfg = ReinforceConfig(samples_per_step=4)
    history = search(decisions, cfg, reward_fn, num_steps=100, workdir=..., seed=0)

Each step samples `samples_per_step` architectures, gets their rewards from `reward_fn` (only
for architectures never evaluated before: rewards are cached by action sequence), and takes one
Adam step (lr 3.5e-4, betas (0, 0.9)) on the per-sample loss -mean_i (R_i - b) log pi(a_i). As in
AutoGAN, the entropy bonus (1e-3 times the sampled sequence's entropy) is added to the reward
(`entropy_in="reward"`; "loss" subtracts it from the loss instead), and the moving-average
baseline is updated before the advantage is taken: b <- R on the first step, else
b <- 0.9 b + 0.1 mean_i R_i; adv_i = R_i - b. (AutoGAN resets b at every search iteration of its
GAN training; there is no such outer loop here, so b runs through the whole search.)

After every step the controller, Adam state, baseline, PRNG key and the history of every sampled
architecture (actions, reward, log-probability, entropy, whether it was evaluated, cached or
rejected) are one Orbax checkpoint, committed atomically: rerunning with the same workdir resumes
exactly where the last finished step left off (and `reward_fn` resumes its own unfinished work).
`sampler="random"` draws from the uniform policy over the same feasible choices and never
updates: the random-search baseline for the same budget.
"""

import dataclasses
import functools
import os
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from nasdip_jax.errors import UserError
from nasdip_jax.search import controller as controller_lib
from nasdip_jax.space import decisions as decisions_lib

SAMPLERS = ("controller", "random")
ENTROPY_IN = ("reward", "loss")
STATUSES = ("evaluated", "cached", "rejected")  # history["status"] codes 0, 1, 2


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
  hidden: int = 100
  lr: float = 3.5e-4
  b1: float = 0.0
  b2: float = 0.9
  baseline_decay: float = 0.9
  entropy_weight: float = 1e-3
  entropy_in: str = "reward"
  samples_per_step: int = 4
  sampler: str = "controller"

  def __post_init__(self):
    if self.sampler not in SAMPLERS:
      raise UserError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
    if self.entropy_in not in ENTROPY_IN:
      raise UserError(f"entropy_in must be one of {ENTROPY_IN}, got {self.entropy_in!r}")
    if self.samples_per_step < 1 or self.hidden < 1 or self.lr <= 0:
      raise UserError("samples_per_step and hidden must be >= 1 and lr > 0")
    if not 0.0 <= self.baseline_decay < 1.0:
      raise UserError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")


class State(NamedTuple):
  params: nnx.State
  opt_state: optax.OptState
  baseline: jax.Array   # () float32, NaN before the first update
  key: jax.Array        # raw key data (uint32): what the next step samples with
  step: jax.Array       # () int32: controller steps done


def make_optimizer(cfg: ReinforceConfig) -> optax.GradientTransformation:
  return optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)


def init(cfg: ReinforceConfig, decisions: decisions_lib.Decisions, key):
  """(graphdef, State) of a fresh controller; the graphdef is None for the random sampler."""
  init_key, key = jax.random.split(key)
  model = controller_lib.Controller(decisions.sizes, cfg.hidden, rngs=nnx.Rngs(params=init_key))
  graphdef, params = nnx.split(model)
  state = State(params, make_optimizer(cfg).init(params), jnp.float32(jnp.nan),
                jax.random.key_data(key), jnp.int32(0))
  return (None if cfg.sampler == "random" else graphdef), state


@functools.lru_cache(maxsize=8)
def make_update(graphdef, decisions, cfg: ReinforceConfig):
  """update(state, actions (B, D), rewards (B,), entropy (B,)) -> (state, info): one step."""
  tx = make_optimizer(cfg)
  loss_weight = cfg.entropy_weight if cfg.entropy_in == "loss" else 0.0

  @jax.jit
  def update(state: State, actions, rewards, entropy):
    if cfg.entropy_in == "reward":
      rewards = rewards + cfg.entropy_weight * entropy
    mean = jnp.mean(rewards)
    baseline = jnp.where(jnp.isnan(state.baseline), mean,
                         cfg.baseline_decay * state.baseline + (1 - cfg.baseline_decay) * mean)
    advantages = rewards - baseline
    loss, grads = jax.value_and_grad(controller_lib.reinforce_loss)(
        state.params, graphdef, decisions, actions, advantages, loss_weight)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return (State(params, opt_state, baseline, state.key, state.step + 1),
            {"loss": loss, "baseline": baseline})

  return update


class _Checkpointer:
  """{state, history} after each controller step, via Orbax: atomic commits (a kill mid-write
  leaves the previous one), two kept, each finished before the next step starts."""

  def __init__(self, directory: str):
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory), options=ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False))  # waited for anyway

  def save(self, state: State, history: dict) -> None:
    self._manager.save(int(state.step), args=ocp.args.StandardSave(
        {"state": state, "history": history}))
    self._manager.wait_until_finished()

  def restore(self, like_state: State, like_history: Callable[[int], dict]):
    step = self._manager.latest_step()
    if step is None:
      return None
    abstract = {"state": jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state),
                "history": like_history(step)}
    out = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return out["state"], {k: np.asarray(v) for k, v in out["history"].items()}

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _empty_history(num_steps: int, batch: int, num_decisions: int) -> dict:
  n = num_steps * batch
  return {"actions": np.zeros((n, num_decisions), np.int32), "reward": np.zeros(n, np.float32),
          "logp": np.zeros(n, np.float32), "entropy": np.zeros(n, np.float32),
          "status": np.zeros(n, np.int32), "baseline": np.zeros(num_steps, np.float32),
          "loss": np.zeros(num_steps, np.float32)}


def _abstract_history(batch: int, num_decisions: int):
  def like(step):
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
            for k, v in _empty_history(step, batch, num_decisions).items()}
  return like


RewardFn = Callable[[int, list], tuple]


def search(decisions: decisions_lib.Decisions, cfg: ReinforceConfig, reward_fn: RewardFn,
           num_steps: int, workdir: str, seed: int = 0,
           on_step: Optional[Callable[[dict], None]] = None) -> dict:
  """Runs (or resumes) the search to `num_steps` controller steps; returns the history.

  reward_fn(step, action sequences) -> (rewards, statuses): one float and one STATUSES entry
  ("evaluated" or "rejected") per sequence; it is called only with sequences never seen before.
  on_step(history so far) runs after each committed step (write reports there).
  history: per sample "actions" (n, D), "reward", "logp", "entropy", "status" (index into
  STATUSES); per step "baseline" (after the update) and "loss".
  """
  graphdef, state = init(cfg, decisions, jax.random.key(seed))
  batch, num_dec = cfg.samples_per_step, len(decisions.sizes)
  checkpointer = _Checkpointer(os.path.join(workdir, "controller"))
  restored = checkpointer.restore(state, _abstract_history(batch, num_dec))
  history = _empty_history(0, batch, num_dec)
  if restored is not None:
    state, history = restored
  # committed like a restored state: a resumed search reuses the compiled sample and update
  state = jax.device_put(state, jax.local_devices()[0])
  cache = {tuple(a): r for a, r, s in zip(history["actions"].tolist(), history["reward"],
                                          history["status"]) if STATUSES[s] == "evaluated"}
  update = make_update(graphdef, decisions, cfg) if graphdef is not None else None
  if int(state.step) > num_steps:
    raise UserError(f"{workdir} already holds {int(state.step)} controller steps, more than "
                    f"num_steps={num_steps}")
  while int(state.step) < num_steps:
    key, sample_key = jax.random.split(jax.random.wrap_key_data(state.key))
    actions, logp, entropy = controller_lib.sample(graphdef, state.params, decisions,
                                                   sample_key, batch)
    rows = [tuple(a) for a in np.asarray(actions).tolist()]
    new = list(dict.fromkeys(r for r in rows if r not in cache))
    fresh = {}
    if new:
      rewards_new, statuses = reward_fn(int(state.step), new)
      for r, value, status in zip(new, rewards_new, statuses):
        fresh[r] = (float(value), STATUSES.index(status))
        if status == "evaluated":
          cache[r] = float(value)
    rewards = np.array([fresh[r][0] if r in fresh else cache[r] for r in rows], np.float32)
    first = {r: i for i, r in reversed(list(enumerate(rows)))}
    status = np.array([fresh[r][1] if r in fresh and first[r] == i else STATUSES.index("cached")
                       for i, r in enumerate(rows)], np.int32)
    state = state._replace(key=jax.random.key_data(key))
    if update is not None:
      state, info = update(state, actions, jnp.asarray(rewards), entropy)
    else:
      state, info = state._replace(step=state.step + 1), {"loss": np.nan,
                                                          "baseline": np.nan}
    row = {"actions": np.asarray(actions, np.int32), "reward": rewards,
           "logp": np.asarray(logp, np.float32), "entropy": np.asarray(entropy, np.float32),
           "status": status, "baseline": np.array([info["baseline"]], np.float32),
           "loss": np.array([info["loss"]], np.float32)}
    history = {k: np.concatenate([history[k], row[k]]) for k in history}
    checkpointer.save(state, history)
    if on_step is not None:
      on_step(history)
  checkpointer.close()
  return history
