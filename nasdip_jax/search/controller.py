"""NAS-DIP's RNN controller (AutoGAN's design) as a Flax NNX module, and pure jitted functions of
its parameters: sample architectures, score given ones, and the REINFORCE loss.

    decisions = space.decisions.Decisions()
    model = Controller(decisions.sizes, hidden=100, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    actions, logp, entropy = sample(graphdef, params, decisions, key, 8)   # (8, D), (8,), (8,)
    genotypes = [decisions.decode(a) for a in actions]

One LSTM cell runs once per decision. Its step-0 input is zeros (and so are its states); the
input of step k+1 is the embedding of action k in one table shared by all decisions (row =
action + the sizes of the decisions before it); a linear head per decision gives the logits.
Infeasible cell choices (given the earlier ones) are masked out, so every sample is a buildable
genotype and log-probabilities are those of the masked distribution. `graphdef=None` is the
uniform policy over the same feasible choices: the random-search baseline.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasdip_jax.space import decisions as decisions_lib

_MASKED = -1e30  # logit of an infeasible choice: probability exactly 0, no inf arithmetic


class Controller(nnx.Module):
  """LSTM cell (hidden -> hidden), a shared embedding, one softmax head per decision."""

  def __init__(self, sizes, hidden: int = 100, *, rngs: nnx.Rngs):
    self.sizes = tuple(int(n) for n in sizes)
    self.hidden = hidden
    self.lstm = nnx.LSTMCell(hidden, hidden, rngs=rngs)
    self.embed = nnx.Embed(sum(self.sizes), hidden, rngs=rngs)
    self.heads = nnx.List([nnx.Linear(hidden, n, rngs=rngs) for n in self.sizes])


def _rollout(model, decisions: decisions_lib.Decisions, batch: int, pick):
  """Runs the decisions in order; pick(k, logits) gives action k. Returns the actions (B, D)
  and, per decision, the (masked) log-probabilities of every choice (B, n_k)."""
  offsets = np.cumsum((0,) + decisions.sizes[:-1])
  if model is not None:
    carry = (jnp.zeros((batch, model.hidden)), jnp.zeros((batch, model.hidden)))
    x = jnp.zeros((batch, model.hidden))
  actions, tables = [], []
  for k, n in enumerate(decisions.sizes):
    if model is None:
      logits = jnp.zeros((batch, n))
    else:
      carry, out = model.lstm(carry, x)
      logits = model.heads[k](out)
    if k < decisions.num_cell_decisions:
      mask = jnp.asarray(decisions.feasible[k])[tuple(actions)]  # (B, n), or (n,) at k = 0
      logits = jnp.where(mask, logits, _MASKED)
    action = pick(k, logits)
    actions.append(action)
    tables.append(jax.nn.log_softmax(logits))
    if model is not None:
      x = model.embed(action + int(offsets[k]))
  return jnp.stack(actions, axis=1), tuple(tables)


def _logp_entropy(actions, tables):
  """Sums over decisions of the chosen action's log-probability and of each decision's entropy."""
  logp = sum(jnp.take_along_axis(t, actions[:, k, None], axis=1)[:, 0]
             for k, t in enumerate(tables))
  entropy = -sum(jnp.sum(jnp.exp(t) * t, axis=1) for t in tables)
  return logp, entropy


@functools.partial(jax.jit, static_argnames=("graphdef", "decisions", "num"))
def sample(graphdef, params, decisions, key, num: int):
  """`num` architectures drawn from the policy: (actions (num, D) int32, logp, entropy)."""
  model = None if graphdef is None else nnx.merge(graphdef, params)
  keys = jax.random.split(key, len(decisions.sizes))
  pick = lambda k, logits: jax.random.categorical(keys[k], logits).astype(jnp.int32)
  actions, tables = _rollout(model, decisions, num, pick)
  return (actions,) + _logp_entropy(actions, tables)


@functools.partial(jax.jit, static_argnames=("graphdef", "decisions"))
def greedy(graphdef, params, decisions):
  """The sequence that takes the most likely choice at every decision: (1, D) actions."""
  model = nnx.merge(graphdef, params)
  return _rollout(model, decisions, 1, lambda k, logits: jnp.argmax(logits, -1).astype(
      jnp.int32))[0]


@functools.partial(jax.jit, static_argnames=("graphdef", "decisions"))
def log_prob(graphdef, params, decisions, actions):
  """(logp (B,), entropy (B,)) of given action sequences (B, D) under the policy."""
  return _logp_entropy(actions, log_prob_tables(graphdef, params, decisions, actions))


def log_prob_tables(graphdef, params, decisions, actions):
  """Per decision, the policy's log-probabilities of every choice (B, n_k) given the earlier
  actions of `actions` (B, D) (teacher forcing)."""
  model = None if graphdef is None else nnx.merge(graphdef, params)
  return _rollout(model, decisions, actions.shape[0], lambda k, _: actions[:, k])[1]


def reinforce_loss(params, graphdef, decisions, actions, advantages, entropy_weight=0.0):
  """The per-sample REINFORCE loss -mean_i(adv_i log pi(a_i)) - entropy_weight mean_i H_i.

  advantages: (B,), one per sampled architecture (AutoGAN's code broadcasts a (B*D, 1) tensor of
  log-probabilities against (B, D) rewards instead).
  """
  logp, entropy = log_prob(graphdef, params, decisions, actions)
  return -jnp.mean(logp * jax.lax.stop_gradient(advantages)) - entropy_weight * jnp.mean(entropy)
