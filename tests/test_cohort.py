"""Cohorts: N members trained as one program equal N single fits; sharding over 8 simulated
devices, memory chunking and resume after a kill do not change the results."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import conftest
from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade
from nasdip_jax.nets import dynamic
from nasdip_jax.nets import layers
from nasdip_jax.nets import skip
from nasdip_jax.space import codec
from nasdip_jax.space import genotype as gt

PX, STEPS, K = 32, 6, 3
CFG = dip.FitConfig(lr=0.01, reg_noise_std=1 / 30, ema_decay=0.9, input_depth=8)


def _problem(seed):
  img = np.sort((np.random.default_rng(seed).random((PX, PX, 3)) * 255).astype(np.uint8), axis=1)
  return degrade.make_problem(img, "denoise", np.random.default_rng(seed))


SPEC, P0 = _problem(0)
_, P1 = _problem(1)


def _skip(key, code):
  del code
  return skip.SkipNet(CFG.input_depth, 3, channels_down=(8, 8), channels_up=(8, 8),
                      channels_skip=(4, 4), rngs=nnx.Rngs(params=key))


RECIPE = cohort.Recipe(_skip, SPEC, CFG)
# Seeds 0, 1, 2 (case a) over two different images (case b) in one cohort.
MEMBERS = cohort.make_members(cohort.seed_keys(0, 3), [P0, P1, P0])


def _single_fit(seed, problem):
  """What the DIP CLI does for one seed: the reference for every member."""
  init_key, data_key = jax.random.split(jax.random.key(seed))
  graphdef, params = nnx.split(_skip(init_key, None), nnx.Param)
  tx = dip.make_optimizer(CFG)
  data = dip.init_data(data_key, problem, CFG)
  state = dip.init_state(params, tx, problem, CFG)
  compiled = dip.compile_single_fit(graphdef, SPEC, CFG, state, data, K, "dispatch")  # once
  return dip.fit(compiled, state, data, STEPS, K)


@functools.lru_cache(maxsize=None)
def _train(execution, num_devices=1, limit=0):
  mesh = None if execution == "loop" else cohort.make_mesh(num_devices)
  return cohort.train(RECIPE, MEMBERS, STEPS, execution=execution, mesh=mesh,
                      steps_per_call=K, memory_limit_bytes=limit)


def _assert_same(a: cohort.CohortResult, b: cohort.CohortResult, atol=2e-3):
  for k in ("psnr", "loss", "psnr_obs"):
    np.testing.assert_allclose(a.curves[k], b.curves[k], atol=atol, rtol=1e-3, err_msg=k)
  np.testing.assert_allclose(a.final, b.final, atol=1e-4)
  np.testing.assert_allclose(a.best_psnr, b.best_psnr, atol=atol)
  np.testing.assert_array_equal(a.best_step, b.best_step)


@pytest.mark.parametrize("execution", ["loop", "vmap"])
def test_members_equal_single_fits(execution):
  result = _train(execution)
  assert result.curves["psnr"].shape == (3, STEPS) and result.final.shape == (3, PX, PX, 3)
  for i, (seed, problem) in enumerate([(0, P0), (1, P1), (2, P0)]):
    state, curves = _single_fit(seed, problem)
    np.testing.assert_allclose(result.curves["psnr"][i], curves["psnr"], atol=2e-3)
    np.testing.assert_allclose(result.curves["loss"][i], curves["loss"], rtol=1e-3)
    np.testing.assert_allclose(result.final[i], np.asarray(state.shown[0]), atol=1e-4)
    np.testing.assert_allclose(result.best[i], np.asarray(state.best_image[0]), atol=1e-4)
    assert result.best_step[i] == int(state.best_step)
  # members differ (own seeds and images), so nothing was shared by accident
  assert not np.allclose(result.curves["psnr"][0], result.curves["psnr"][2])


@pytest.mark.parametrize("execution", ["vmap", "shard_map"])
def test_sharded_over_8_devices_equals_unsharded(execution):
  sharded = _train(execution, num_devices=8)  # 3 members padded to 8, one per device
  assert sharded.info["devices"] == 8 and sharded.info["chunk_members"] == 8
  _assert_same(sharded, _train("vmap"))


def test_shard_map_with_several_members_per_device():
  result = _train("shard_map", num_devices=2)  # blocks of 2 members (the 4th is padding)
  assert result.info["chunk_members"] == 4
  _assert_same(result, _train("vmap"))


def test_chunking_under_a_small_memory_limit_keeps_results():
  whole = _train("vmap")
  assert whole.info["num_chunks"] == 1 and whole.info["chunk_members"] == 3
  limit = int(0.75 * whole.info["memory_bytes"])
  chunked = _train("vmap", limit=limit)
  assert chunked.info["chunk_members"] < 3 and chunked.info["num_chunks"] >= 2
  assert chunked.info["memory_bytes"] <= limit
  _assert_same(chunked, whole)


def test_memory_limit_below_one_member_is_a_clear_error():
  with pytest.raises(UserError, match="MiB available"):
    cohort.train(RECIPE, MEMBERS, STEPS, execution="loop", steps_per_call=K,
                 memory_limit_bytes=1000)


def test_cpu_ram_is_shared_only_by_the_devices_a_cohort_uses(monkeypatch):
  pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
  monkeypatch.setattr(cohort.os, "sysconf", pages.__getitem__)
  assert jax.local_devices()[0].memory_stats() is None  # CPU: the RAM is the limit
  assert cohort.free_memory_bytes(1) == 4096000 and cohort.free_memory_bytes(8) == 512000
  asked = []
  monkeypatch.setattr(cohort, "free_memory_bytes", lambda n: asked.append(n) or 2**40)
  looped = cohort.train(RECIPE, MEMBERS, STEPS, execution="loop", steps_per_call=K)
  sharded = cohort.train(RECIPE, MEMBERS, STEPS, execution="vmap", mesh=cohort.make_mesh(8),
                         steps_per_call=K)
  assert asked == [1, 8]  # a looped cohort's one device has the whole RAM
  _assert_same(looped, _train("loop"))
  _assert_same(sharded, _train("vmap", num_devices=8))


class _Killed(Exception):
  pass


def test_kill_and_resume_loses_no_finished_member(tmp_path):
  workdir = str(tmp_path / "cohort")
  calls = []

  def kill_in_second_member(idx, curves):
    calls.append((tuple(idx), curves["loss"].shape[-1]))
    if idx[0] == 1 and curves["loss"].shape[-1] == 2 * K:
      raise _Killed

  with pytest.raises(_Killed):
    cohort.train(RECIPE, MEMBERS, STEPS, execution="loop", steps_per_call=K, workdir=workdir,
                 checkpoint_every=K, on_chunk=kill_in_second_member)
  assert os.path.exists(os.path.join(workdir, "members_00000_1.npz"))
  calls.clear()
  resumed = cohort.train(RECIPE, MEMBERS, STEPS, execution="loop", steps_per_call=K,
                         workdir=workdir, checkpoint_every=K,
                         on_chunk=lambda idx, c: calls.append((tuple(idx), c["loss"].shape[-1])))
  assert resumed.info["resumed_members"] == 1
  # member 1 went on from its step-3 checkpoint (one call of 3 steps), member 2 from scratch
  assert calls == [((1,), 2 * K), ((2,), K), ((2,), 2 * K)]
  _assert_same(resumed, _train("loop"), atol=1e-5)
  again = cohort.train(RECIPE, MEMBERS, STEPS, execution="loop", workdir=workdir)
  assert again.info["resumed_members"] == 3 and again.info["num_chunks"] == 0
  other = cohort.make_members(cohort.seed_keys(5, 3), P0)
  with pytest.raises(UserError, match="different cohort"):
    cohort.train(RECIPE, other, STEPS, execution="loop", workdir=workdir)


def test_images_of_different_sizes_are_refused():
  img = np.zeros((64, 64, 3), np.uint8)
  _, big = degrade.make_problem(img, "denoise", np.random.default_rng(0))
  with pytest.raises(UserError, match="one size"):
    cohort.make_members(cohort.seed_keys(0, 2), [P0, big])


# The tiny ISNAS runs' width (tests/test_isnas.py `_tiny`): in their xdist group, the dynamic
# cohort below reuses their compiled program.
W = 16


_dynamic = dynamic.Builder(CFG.input_depth, 3, width=W)


def _genotypes():
  """Two genotypes of different structural stages, buildable at W."""
  picks, kinds = [], set()
  buildable = dict(zip(codec.KINDS, codec.buildable_kinds(W)))
  for i, cell in enumerate(gt.cells(gt.Space.reference(W))):
    kind = codec.cell_kind(cell)
    if buildable[kind] and kind[0] not in kinds:
      kinds.add(kind[0])
      conn = np.random.default_rng(i).integers(0, 2, (5, 5))
      picks.append(gt.Genotype(cell, tuple(map(tuple, conn))))
    if len(picks) == 2:
      return picks


@conftest.DYNAMIC_PROGRAM
def test_different_genotypes_in_dynamic_mode_equal_their_single_runs():
  keys, codes = cohort.seed_keys(0, 2), [codec.encode(g, W) for g in _genotypes()]
  recipe = cohort.Recipe(_dynamic, SPEC, CFG)
  train = lambda k, c: cohort.train(recipe, cohort.make_members(k, P0, codec.stack_codes(c)),
                                    2, execution="loop", steps_per_call=2)
  both = train(keys, codes)  # one program, each genotype through a real conditional
  assert len({tuple(c) for c in both.curves["psnr"].round(3)}) == 2
  for i in range(2):
    alone = train(keys[i:i + 1], codes[i:i + 1])
    assert alone.info["compile_seconds"] == 0.0  # the same program
    for k in ("psnr", "loss"):
      np.testing.assert_allclose(both.curves[k][i], alone.curves[k][0], rtol=1e-6, err_msg=k)
    np.testing.assert_allclose(both.final[i], alone.final[0], atol=1e-6)


class _SwitchNet(nnx.Module):
  """A stand-in for the dynamic network: its code picks the activation through lax.switch."""

  def __init__(self, key, code):
    del code
    self.conv = layers.Conv(CFG.input_depth, 3, 3, rngs=nnx.Rngs(params=key))

  def __call__(self, z, code):
    return jax.nn.sigmoid(jax.lax.switch(code, [jnp.tanh, jax.nn.relu], self.conv(z)))


def test_shard_map_keeps_each_members_switch_a_real_conditional():
  """One member per device: the switch stays a conditional (vmap would run every branch)."""
  members = cohort.make_members(cohort.seed_keys(0, 2), P0, np.array([0, 1], np.int32))
  recipe, mesh = cohort.Recipe(_SwitchNet, SPEC, CFG), cohort.make_mesh(2)
  run = lambda execution: cohort.train(recipe, members, STEPS, execution=execution,
                                       steps_per_call=K, mesh=mesh)
  sharded, vmapped = run("shard_map"), run("vmap")
  _assert_same(sharded, run("loop"))
  _assert_same(vmapped, sharded)
  assert not np.allclose(sharded.curves["psnr"][0], sharded.curves["psnr"][1])
  hlo = lambda execution: cohort._program(  # pylint: disable=protected-access
      recipe, members, execution, mesh, 2, K, "auto").compiled.executable.as_text()
  assert " conditional(" in hlo("shard_map") and " conditional(" not in hlo("vmap")
