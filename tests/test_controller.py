"""The RL controller: decision sequences, sampling vs its log-probabilities, the REINFORCE
gradient by hand, convergence on a synthetic reward, and exact resume of the search loop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasdip_jax import compilations
from nasdip_jax.errors import UserError
from nasdip_jax.search import controller as C
from nasdip_jax.search import reinforce as R
from nasdip_jax.space import decisions as dl
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import published

# Ten buildable cells, with masking: trans_conv pairs only with identity, identity only with 1x1.
TINY = dl.Decisions(gt.Space(primitives=("nearest", "trans_conv"), transforms=("conv", "identity"),
                             kernels=(1, 3), activations=("none", "ReLU"),
                             allow_transform_first=False, channels=16), connections="pattern")


def _all_sequences(decisions):
  """Every feasible action sequence, from the feasibility tables alone."""
  k = decisions.num_cell_decisions
  cells = [p for p in itertools.product(*map(range, decisions.sizes[:k]))
           if all(decisions.feasible[j][p[:j + 1]] for j in range(k))]
  conns = itertools.product(*map(range, decisions.sizes[k:]))
  return np.array([c + b for c, b in itertools.product(cells, list(conns))], np.int32)


def test_feasible_cell_decisions_are_exactly_the_buildable_cells():
  d = dl.Decisions()
  k = d.num_cell_decisions
  seqs = {tuple(s[:k]) for s in _all_sequences(dl.Decisions(connections="pattern"))}
  decoded = {d.decode(s + (0,) * 25).cell for s in seqs}
  assert decoded == set(gt.cells(gt.Space())) and len(decoded) == 297 == len(seqs)
  assert d.sizes == (5, 6, 4, 3, 2) + (2,) * 25
  for g in published.PUBLISHED.values():
    assert d.decode(d.encode(g)) == g
  p = dl.Decisions(connections="pattern")
  shared = gt.from_pattern(gt.cell_from_id(119), (0, 1, 0, 1, 1, 0, 0, 1, 1))
  assert p.decode(p.encode(shared)) == shared and len(p.sizes) == 5 + 9
  for g in published.PUBLISHED.values():  # all three are shift invariant: shared patterns
    assert p.decode(p.encode(g)) == g
  with pytest.raises(gt.InvalidGenotype, match="not a shared level-difference pattern"):
    p.encode(gt.from_name("119_" + "1" + "0" * 24))
  with pytest.raises(gt.InvalidGenotype):
    d.decode((4, 0) + (0,) * 28)  # trans_conv -> conv is not a cell
  with pytest.raises(UserError, match="connections"):
    dl.Decisions(connections="both")


@pytest.fixture(scope="module")
def tiny_controller():
  model = C.Controller(TINY.sizes, hidden=8, rngs=nnx.Rngs(3))
  graphdef, params = nnx.split(model)
  # scale the heads up so the policy is far from uniform
  params = jax.tree.map(lambda x: 4.0 * x, params)
  return graphdef, params


def test_log_probabilities_are_a_distribution_over_exactly_the_feasible_sequences(
    tiny_controller):
  graphdef, params = tiny_controller
  seqs = _all_sequences(TINY)
  assert len(seqs) == 10 * 512
  logp, _ = C.log_prob(graphdef, params, TINY, jnp.asarray(seqs))
  assert float(jnp.sum(jnp.exp(logp))) == pytest.approx(1.0, abs=1e-4)


def test_sampling_frequencies_match_the_softmax(tiny_controller):
  graphdef, params = tiny_controller
  n = 40000
  actions, logp, entropy = C.sample(graphdef, params, TINY, jax.random.key(0), n)
  actions = np.asarray(actions)
  logp2, entropy2 = C.log_prob(graphdef, params, TINY, jnp.asarray(actions))
  np.testing.assert_allclose(logp, logp2, atol=1e-5)
  np.testing.assert_allclose(entropy, entropy2, atol=1e-5)
  seqs = _all_sequences(TINY)
  prob = np.exp(np.asarray(C.log_prob(graphdef, params, TINY, jnp.asarray(seqs))[0]))
  k = TINY.num_cell_decisions
  # the cell marginal (10 cells), and the joint of the cell with the first connection bit
  for width in (k, k + 1):
    keys = [tuple(s[:width]) for s in seqs]
    want = {}
    for key, p in zip(keys, prob):
      want[key] = want.get(key, 0.0) + p
    got = {key: 0 for key in want}
    for a in map(tuple, actions[:, :width]):
      got[a] += 1  # a KeyError here would be an infeasible sample
    for key, p in want.items():
      sigma = np.sqrt(p * (1 - p) / n)
      assert abs(got[key] / n - p) < 5 * sigma + 1e-4, (key, got[key] / n, p)
  assert min(want.values()) < 0.02 < max(want.values())  # a policy far from uniform


def test_the_uniform_policy_splits_each_decision_over_its_feasible_choices():
  seqs = _all_sequences(TINY)
  logp, _ = C.log_prob(None, None, TINY, jnp.asarray(seqs))
  k = TINY.num_cell_decisions
  for s, lp in zip(seqs[::97], np.asarray(logp)[::97]):
    counts = [TINY.feasible[j][tuple(s[:j])].sum() for j in range(k)]
    assert lp == pytest.approx(-np.sum(np.log(counts)) - 9 * np.log(2), abs=1e-5)


def test_reinforce_gradient_matches_the_hand_derived_one(tiny_controller):
  graphdef, params = tiny_controller
  actions, _, _ = C.sample(graphdef, params, TINY, jax.random.key(1), 5)
  adv = jnp.array([1.5, -0.5, 0.25, 2.0, -1.0])
  grad = jax.jit(jax.grad(C.reinforce_loss), static_argnums=(1, 2))
  grads = grad(params, graphdef, TINY, actions, adv)
  # d loss / d logits of decision k for sample i = -(adv_i / B) (onehot(a_ik) - p_ik): for the
  # first decision the logits are head_0(h_1) with h_1 independent of the actions, so the
  # gradient of head 0's bias is the sum of these over the samples.
  tables = C.log_prob_tables(graphdef, params, TINY, actions)
  p0 = np.exp(np.asarray(tables[0]))
  onehot = np.eye(TINY.sizes[0])[np.asarray(actions[:, 0])]
  want = -np.sum(np.asarray(adv)[:, None] * (onehot - p0), axis=0) / 5
  np.testing.assert_allclose(grads["heads"][0]["bias"][...], want, atol=1e-6)
  # every parameter: the score function wired per sample, through the network's own VJP
  cot = tuple(-jnp.asarray(adv)[:, None] / 5 * jax.nn.one_hot(actions[:, k], n)
              for k, n in enumerate(TINY.sizes))
  by_vjp = jax.jit(lambda p, c: jax.vjp(lambda q: C.log_prob_tables(graphdef, q, TINY, actions),
                                         p)[1](c)[0])(params, cot)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grads, by_vjp)
  # AutoGAN's broadcast ((B*D, 1) log-probs times (B, D)) would mix samples: a sample's
  # gradient must not depend on another sample's advantage
  g1 = grad(params, graphdef, TINY, actions[:1], adv[:1])
  alone = grad(params, graphdef, TINY, actions, jnp.array([1.5, 0, 0, 0, 0]))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, 5 * b, rtol=1e-5, atol=1e-6), g1, alone)


def test_update_takes_autogans_baseline_and_entropy_bonus():
  cfg = R.ReinforceConfig(samples_per_step=2, hidden=8, entropy_weight=0.5)
  graphdef, state = R.init(cfg, TINY, jax.random.key(0))
  update = R.make_update(graphdef, TINY, cfg)
  actions, _, entropy = C.sample(graphdef, state.params, TINY, jax.random.key(1), 2)
  rewards = jnp.array([3.0, 5.0])
  s1, info = update(state, actions, rewards, entropy)
  r = np.asarray(rewards + 0.5 * entropy)
  assert float(info["baseline"]) == pytest.approx(r.mean(), rel=1e-6)  # first: b = mean R
  s2, info = update(s1, actions, rewards, entropy)
  assert float(info["baseline"]) == pytest.approx(0.9 * r.mean() + 0.1 * r.mean(), rel=1e-6)
  s3, info = update(s2, actions, rewards + 10.0, entropy)
  assert float(info["baseline"]) == pytest.approx(0.9 * r.mean() + 0.1 * (r.mean() + 10),
                                                  rel=1e-6)
  assert int(s3.step) == 3
  # the loss is the per-sample REINFORCE loss with adv = R + 0.5 H - b
  loss = C.reinforce_loss(s2.params, graphdef, TINY, actions,
                          r + 10.0 - float(info["baseline"]))
  assert float(info["loss"]) == pytest.approx(float(loss), rel=1e-5)


TARGET = gt.from_name("158_0000100011001110111111111")


def _synthetic_reward(decisions, calls):
  """The fraction of decisions equal to the hidden target's (TARGET, or one of TINY's)."""
  target = np.array(decisions.encode(TARGET) if decisions != TINY else _all_sequences(TINY)[777])

  def reward_fn(step, sequences):
    calls.append((step, list(sequences)))
    return [float(np.mean(np.array(s) == target)) for s in sequences], ["evaluated"] * len(
        sequences)
  return reward_fn


def test_controller_converges_to_a_hidden_target_on_a_synthetic_reward():
  """40 REINFORCE updates of the full decision space's controller (the search loop without its
  checkpoints, which the resume test covers)."""
  d = dl.Decisions()
  cfg = R.ReinforceConfig(lr=0.02, samples_per_step=32, hidden=32)
  graphdef, state = R.init(cfg, d, jax.random.key(0))
  update = R.make_update(graphdef, d, cfg)
  reward_fn, key, rewards = _synthetic_reward(d, []), jax.random.key(1), []
  for step in range(40):
    key, sub = jax.random.split(key)
    actions, _, entropy = C.sample(graphdef, state.params, d, sub, 32)
    reward, _ = reward_fn(step, [tuple(a) for a in np.asarray(actions).tolist()])
    state, _ = update(state, actions, jnp.asarray(reward, jnp.float32), entropy)
    rewards.append(np.mean(reward))
  greedy = np.asarray(C.greedy(graphdef, state.params, d))[0]
  assert d.decode(greedy) == TARGET
  assert rewards[0] < 0.6 and rewards[-1] > 0.95


def test_killed_search_resumes_with_the_same_history(tmp_path):
  cfg = R.ReinforceConfig(lr=0.2, samples_per_step=3, hidden=8)  # repeats a sample at step 4
  calls = []
  full = R.search(TINY, cfg, _synthetic_reward(TINY, calls), 6, str(tmp_path / "a"), seed=4)

  class Killed(Exception):
    pass

  def dies_at_step_3(step, sequences):
    if step == 3:
      raise Killed()
    return _synthetic_reward(TINY, [])(step, sequences)

  with pytest.raises(Killed):
    R.search(TINY, cfg, dies_at_step_3, 6, str(tmp_path / "b"), seed=4)
  resumed_calls = []
  with compilations.counting() as compiled:
    resumed = R.search(TINY, cfg, _synthetic_reward(TINY, resumed_calls), 6,
                       str(tmp_path / "b"), seed=4)
  # the restored state is placed like a fresh one: neither sample nor update is recompiled
  assert not [n for n in compiled.names if n in ("jit(sample)", "jit(update)")], compiled.names
  for k in full:
    np.testing.assert_array_equal(full[k], resumed[k], err_msg=k)
  assert [c[0] for c in resumed_calls] == [s for s, _ in calls if s >= 3]
  # every sequence is evaluated once: repeats are served from the cache
  seen = [tuple(s) for _, seqs in calls for s in seqs]
  assert len(seen) == len(set(seen))
  status = full["status"]
  assert np.sum(status == R.STATUSES.index("evaluated")) == len(seen)
  assert np.sum(status == R.STATUSES.index("cached")) == 18 - len(seen) > 0


def test_random_sampler_never_updates():
  cfg = R.ReinforceConfig(samples_per_step=4, hidden=8, sampler="random")
  graphdef, state = R.init(cfg, TINY, jax.random.key(0))
  assert graphdef is None
  with pytest.raises(UserError, match="sampler"):
    R.ReinforceConfig(sampler="evolution")
