"""The DIP fitting loop on a tiny network: learning, reproducibility, loop forms, EMA, guard."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasdip_jax import compilations
from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import metrics
from nasdip_jax.nets import skip

PX = 32


def _problem(task="denoise"):
  img = (np.random.default_rng(0).random((PX, PX, 3)) * 255).astype(np.uint8)
  img = np.sort(img, axis=1)  # smooth-ish structure a tiny net can fit
  return degrade.make_problem(img, task, np.random.default_rng(0), factor=4)


def _setup(cfg, seed=0, task="denoise"):
  spec, problem = _problem(task)
  key_init, key_data = jax.random.split(jax.random.key(seed))
  net = skip.SkipNet(cfg.input_depth, 3, channels_down=(8, 8), channels_up=(8, 8),
                     channels_skip=(4, 4), rngs=nnx.Rngs(params=key_init))
  graphdef, params = nnx.split(net, nnx.Param)
  tx = dip.make_optimizer(cfg)
  data = dip.init_data(key_data, problem, cfg)
  state = dip.init_state(params, tx, problem, cfg)
  return spec, graphdef, tx, data, state


CFG = dip.FitConfig(lr=0.01, reg_noise_std=1 / 30, ema_decay=0.0, input_depth=8)


@functools.lru_cache(maxsize=None)
def _compiled(cfg, loop, task="denoise", chunk=10):
  spec, graphdef, tx, data, state = _setup(cfg, task=task)
  step = dip.make_step_fn(graphdef, tx, spec, cfg)
  return dip.compile_fit(step, state, data, chunk, loop)


def _run(cfg, steps, seed=0, loop="dispatch", chunk=10, task="denoise"):
  _, _, _, data, state = _setup(cfg, seed, task)
  return dip.fit(_compiled(cfg, loop, task, chunk), state, data, steps, chunk)


def test_loss_falls_and_metrics_are_consistent():
  state, curves = _run(CFG, 40)
  assert curves["loss"].shape == (40,) and int(state.step) == 40
  assert curves["loss"][-5:].mean() < 0.5 * curves["loss"][:5].mean()
  assert np.all(curves["fallback"] == 0)
  spec, problem = _problem()
  # the last logged PSNR is the quality of the last shown image (EMA off: the last output)
  assert float(spec.quality(problem.clean, state.shown)[0]) == pytest.approx(curves["psnr"][-1],
                                                                             abs=1e-4)
  assert int(state.best_step) == int(np.argmax(curves["psnr"]))
  assert float(state.best_psnr) == pytest.approx(curves["psnr"].max(), abs=1e-5)
  assert float(spec.quality(problem.clean, state.best_image)[0]) == pytest.approx(
      curves["psnr"].max(), abs=1e-4)


def test_same_seed_reproduces_and_other_seed_differs():
  _, a = _run(CFG, 20, seed=1)
  _, b = _run(CFG, 20, seed=1)
  _, c = _run(CFG, 20, seed=2)
  np.testing.assert_array_equal(a["psnr"], b["psnr"])
  assert not np.allclose(a["psnr"], c["psnr"])


def test_chunk_size_and_loop_form_do_not_change_results():
  _, ref = _run(CFG, 20, chunk=10)
  _, uneven = _run(CFG, 20, chunk=7)   # chunks 7, 7, 6 through the same compiled step
  _, scanned = _run(CFG, 20, loop="scan", chunk=7)  # one program; the final chunk is shorter
  np.testing.assert_array_equal(ref["psnr"], uneven["psnr"])
  np.testing.assert_allclose(ref["psnr"], scanned["psnr"], atol=1e-2)  # float reassociation
  np.testing.assert_allclose(ref["loss"], scanned["loss"], rtol=1e-3)


def test_ema_is_099_running_average_from_first_output():
  _, _, _, data, s0 = _setup(CFG)
  c = _compiled(CFG, "dispatch")
  s1, _ = c.run(s0, data, 1)
  out0 = np.asarray(s1.shown)
  s2, _ = c.run(s1, data, 1)
  out1 = np.asarray(s2.shown)
  ema_cfg = dip.FitConfig(**{**CFG.__dict__, "ema_decay": 0.99})
  _, _, _, data_e, s0e = _setup(ema_cfg)
  se, m = _compiled(ema_cfg, "dispatch").run(s0e, data_e, 2)
  np.testing.assert_allclose(np.asarray(se.shown), 0.99 * out0 + 0.01 * out1, atol=1e-6)
  spec, problem = _problem()
  assert m["psnr"][1] == pytest.approx(float(metrics.psnr(problem.clean, se.shown)[0]), abs=1e-4)


def test_divergence_guard_restores_params_and_adam_state():
  cfg = dip.FitConfig(**{**CFG.__dict__, "backtrack_db": 5.0})
  spec, graphdef, tx, data, state = _setup(cfg)
  step = jax.jit(dip.make_step_fn(graphdef, tx, spec, cfg))
  s1, m1 = step(state, data)  # a good step: the snapshot is the pre-update state
  assert float(m1["fallback"]) == 0
  jax.tree.map(np.testing.assert_array_equal, s1.snapshot, (state.params, state.opt_state))
  s2, _ = step(s1, data)
  # pretend the last good step had a far higher PSNR: this step diverged
  bad = s2._replace(last_psnr_obs=s2.last_psnr_obs + 100.0)
  s3, m3 = step(bad, data)
  assert float(m3["fallback"]) == 1 and int(s3.num_fallbacks) == 1 and int(s3.step) == 3
  jax.tree.map(np.testing.assert_array_equal, (s3.params, s3.opt_state), bad.snapshot)
  np.testing.assert_array_equal(s3.shown, bad.shown)
  assert float(s3.best_psnr) == float(bad.best_psnr)
  s4, m4 = step(s3._replace(last_psnr_obs=s2.last_psnr_obs), data)  # training goes on
  assert float(m4["fallback"]) == 0
  assert not np.array_equal(jax.tree.leaves(s4.params)[0], jax.tree.leaves(s3.params)[0])


def test_sr_and_inpaint_steps_run():
  for task in ("sr", "inpaint"):
    state, curves = _run(CFG, 10, task=task)
    assert np.all(np.isfinite(curves["loss"])) and int(state.step) == 10


def test_step_traces_once_under_vmap_cohort():
  spec, graphdef, tx, data, state = _setup(CFG)
  step = dip.make_step_fn(graphdef, tx, spec, CFG, vmapped=True)
  traced = jax.jit(jax.named_call(step, name="cohort"))
  stack = lambda t: jax.tree.map(lambda a: jnp.stack([a, a]), t)
  s, d = stack(state), stack(data)
  with compilations.counting() as compiled:
    for _ in range(2):
      s, m = traced(s, d)
  assert compiled.n == 1  # one program for both calls
  assert m["loss"].shape == (2,)
  np.testing.assert_allclose(m["loss"][0], m["loss"][1], rtol=1e-6)


def test_input_noise_perturbs_z_and_only_with_reg_noise_std():
  """Step 0's loss is the MSE of the network at z (no noise) or at z + sigma N(0, 1) drawn from
  the data's noise key folded with the step: recomputed here by hand. Later steps draw anew."""
  losses = {}
  for reg in (0.0, 0.5):
    cfg = dip.FitConfig(lr=0.01, reg_noise_std=reg, input_depth=8)
    spec, graphdef, tx, data, state = _setup(cfg)
    step = jax.jit(functools.partial(dip.train_step, graphdef, tx, spec, cfg))
    noise = jax.random.normal(jax.random.fold_in(data.noise_key, 0), data.z.shape)
    out = jax.jit(lambda p, z, g=graphdef: nnx.merge(g, p)(z))(state.params, data.z + reg * noise)
    want = float(jnp.mean(jnp.square(out - data.problem.observation)))
    losses[reg] = []
    for _ in range(4):
      state, m = step(state, data)
      losses[reg].append(float(m["loss"]))
    assert losses[reg][0] == pytest.approx(want, rel=1e-5), reg
  assert all(a != b for a, b in zip(losses[0.0], losses[0.5]))
