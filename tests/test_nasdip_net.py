"""The NAS-DIP cross-scale network: parameter counts against the reference, used modules, forward."""

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import TESTDATA
from nasdip_jax.errors import UserError
from nasdip_jax.nets import cells
from nasdip_jax.nets import nasdip
from nasdip_jax.nets import registry
from nasdip_jax.nets import skip
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import lists
from nasdip_jax.space import published

COUNTS = json.load(open(os.path.join(TESTDATA, "param_counts.json")))


def _abstract(g, in_ch, out_ch, width=128):
  return nnx.eval_shape(lambda: nasdip.NasDipNet(in_ch, out_ch, g, width=width, rngs=nnx.Rngs(0)))


def _params_of(net, dotted):
  node = net
  for part in dotted.split("."):
    node = node[int(part)] if part.isdigit() else getattr(node, part)
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(node, nnx.Param)))


@pytest.mark.parametrize("name,key,out_ch", [("nasdip_denoise", "nasdip_denoising", 3),
                                             ("nasdip_inpaint", "nasdip_inpainting", 1),
                                             ("nasdip_sr", "nasdip_sr", 3)])
def test_published_param_counts(name, key, out_ch):
  net = _abstract(published.PUBLISHED[name], 32, out_ch)
  ref = COUNTS["nasdip"][key]
  assert registry.num_params(net) == ref["params_all"]
  unused = sum(_params_of(net, m) for m in net.unused())
  assert registry.num_params(net) - unused == ref["params_with_grad"]


@pytest.mark.parametrize("row", range(20))
def test_isnas_rows_param_counts(row):
  ref = COUNTS["isnas_first20"][row]
  g = gt.from_name(ref["model_name"])
  for c in (1, 3):
    net = _abstract(g, c, c)
    unused = sum(_params_of(net, m) for m in net.unused())
    assert registry.num_params(net) == ref[f"c{c}"]["params_all"]
    assert registry.num_params(net) - unused == ref[f"c{c}"]["params_with_grad"]


@functools.lru_cache(maxsize=None)
def _cell_params(cell):
  return cells.num_cell_params(cell, 128)


def test_all_522_isnas_models_param_counts():
  lines = lists.names("nas_dataset_522")
  counts = COUNTS["isnas_all522_params_c1"]
  assert len(counts) == len(lines) == 522
  g0 = gt.from_name(lines[0])
  base = registry.num_params(_abstract(g0, 1, 1)) - 9 * _cell_params(g0.cell)
  for line, want in zip(lines, counts):
    g = gt.from_name(line)
    assert base + 9 * _cell_params(g.cell) == want, line


def test_published_forward_at_small_width_and_unbuildable_genotypes():
  net = nasdip.NasDipNet(4, 3, published.PUBLISHED["nasdip_sr"], width=8, rngs=nnx.Rngs(0))
  out = net(jnp.full((1, 64, 64, 4), 0.05))
  assert out.shape == (1, 64, 64, 3) and bool(jnp.all((out > 0) & (out < 1)))
  with pytest.raises(gt.InvalidGenotype, match="groups"):
    nasdip.NasDipNet(4, 3, gt.from_name("240_" + "1" * 25), width=8, rngs=nnx.Rngs(0))


def test_connections_change_the_function():
  cell = gt.cell_from_id(5)
  z = jax.random.uniform(jax.random.key(0), (1, 32, 32, 2)) * 0.1
  outs = []
  for bits in ("0" * 25, "1" * 25, "1" + "0" * 24):
    net = nasdip.NasDipNet(2, 1, gt.Genotype(cell, gt.connections_of(bits)), width=8,
                           rngs=nnx.Rngs(0))
    outs.append(np.asarray(net(z)))
  assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[0], outs[2])
  assert len(nasdip.NasDipNet(2, 1, gt.Genotype(cell, gt.connections_of("0" * 25)), width=8,
                              rngs=nnx.Rngs(0)).unused()) == 5 + 4 + 4


def test_stage1_skip_net_with_cell():
  cell = gt.cell_from_id(158)
  net = skip.SkipNet(4, 3, channels_down=(16,) * 3, channels_up=(16,) * 3,
                     channels_skip=(4,) * 3, cell=cell, rngs=nnx.Rngs(0))
  assert len(net.cells) == 3
  base = skip.SkipNet(4, 3, channels_down=(16,) * 3, channels_up=(16,) * 3,
                      channels_skip=(4,) * 3, rngs=nnx.Rngs(0))
  assert registry.num_params(net) == registry.num_params(base) + 3 * cells.num_cell_params(cell, 16)
  assert net(jnp.zeros((1, 32, 32, 4))).shape == (1, 32, 32, 3)


def test_registry_genotype_rules():
  net_cfg = dict(channels_down=(8,) * 5, channels_up=(8,) * 5, channels_skip=(4,) * 5,
                 kernel_down=3, kernel_up=3, kernel_skip=1, upsample="bilinear", need1x1_up=True,
                 pad="reflection", conv_impl="auto")
  m = registry.build_model("nasdip_denoise", net_cfg, 4, 3, rngs=nnx.Rngs(0))
  assert gt.cell_to_id(m.dec_up[0].cell) == 158
  with pytest.raises(UserError, match="needs config.genotype"):
    registry.build_model("nasdip", net_cfg, 4, 3, rngs=nnx.Rngs(0))
  with pytest.raises(UserError, match="published architecture"):
    registry.build_model("nasdip_sr", net_cfg, 4, 3, genotype="5_" + "0" * 25, rngs=nnx.Rngs(0))
  with pytest.raises(UserError, match="one width"):
    registry.build_model("nasdip", {**net_cfg, "channels_up": (4,) * 5}, 4, 3,
                         genotype="5_" + "0" * 25, rngs=nnx.Rngs(0))
  assert registry.genotype_name("nasdip_sr", "") == "119_1001011001011000011000011"


def _recorded_cells(up, sources):
  """(cell, calls, chains): cell(pos, x) = up(pos, x) appending pos to calls at run time, and
  `_all_up_chains`' chains of sources through up."""
  calls, chains = [], {}

  def cell(pos, x):
    jax.debug.callback(lambda p: calls.append(int(p)), pos)
    return up(pos, x)

  nasdip.CrossScaleBase()._all_up_chains(sources, up, chains)
  return cell, calls, chains


def test_used_level_cells_run_the_decoders_cell_and_only_the_chains_the_table_reads():
  """`_used_level_cells` (the scorer's), level by level as `_forward` calls it: the decoder's
  cell of x at position N - 1 + r, and `_all_up_chains`' value on every chain (j, r) that some
  stage <= r takes (the others zero); at level 0, `_used_stage0_cells`: the sum of the chains
  stage 0 takes; one cell call each at the right position."""
  n = nasdip.N
  sources = [jnp.full((1, 2 ** (n - l), 2 ** (n - l), 2), l + 1.0) for l in range(n)]

  def up(pos, x):  # position-dependent, so a chain routed through the wrong level shows
    return (pos + 2.0) * jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)

  base = nasdip.CrossScaleBase()
  cell, calls, want = _recorded_cells(up, sources)
  decoder_in = [jnp.full(s.shape, -1.0 - l) for l, s in enumerate(sources)]  # stage inputs

  def levels(conn):
    cache, xs = {}, {}
    for r in reversed(range(1, n - 1)):
      xs[r] = base._used_level_cells(r, decoder_in[r + 1], sources, cell, cache, conn)
    xs[0], stage0 = base._used_stage0_cells(decoder_in[1], sources, cell, cache, conn)
    return cache, xs, stage0

  run = jax.jit(levels)
  tables = [np.zeros((n, n), np.int32), np.ones((n, n), np.int32), np.eye(n, k=4, dtype=np.int32),
            np.eye(n, k=1, dtype=np.int32)] + [
                np.random.default_rng(s).integers(0, 2, (n, n)).astype(np.int32) for s in range(6)]
  for conn in tables:
    calls.clear()
    got, xs, stage0 = jax.block_until_ready(run(conn))
    jax.effects_barrier()
    used = {(j, l): bool(conn[:l + 1, j].any()) for l in range(n - 1) for j in range(l + 1, n)}
    assert set(got) == {(j, l) for j, l in used if l > 0}
    for (j, l), on in used.items():
      if l > 0:
        np.testing.assert_array_equal(got[j, l], want[j, l] if on else 0 * want[j, l],
                                      err_msg=f"chain {j} -> {l} of\n{conn}")
    np.testing.assert_array_equal(
        stage0, sum((want[j, 0] for j in range(1, n) if conn[0, j]), 0 * want[1, 0]))
    for r, x in xs.items():
      np.testing.assert_array_equal(x, up(n - 1 + r, decoder_in[r + 1]))
    assert sorted(calls) == sorted([l for (j, l), on in used.items() if on]
                                   + [n - 1 + r for r in range(n - 1)])


def test_affine_cells_run_stage_0s_chains_as_one_cell_call():
  """With `affine`, stage 0's chains are n cell(mean of their inputs) for an affine cell, from
  one cell call (none if no chain); with affine False, the chains' sum as without it."""
  n = nasdip.N
  rng = np.random.default_rng(0)
  sources = [jnp.asarray(rng.random((1, 2 ** (n - l), 2 ** (n - l), 2)), jnp.float32)
             for l in range(n)]

  def up(pos, x):  # affine, position-dependent
    return (pos + 2.0) * jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2) + 0.5

  base = nasdip.CrossScaleBase()
  cell, calls, want = _recorded_cells(up, sources)
  cache = {(j, 1): want[j, 1] for j in range(2, n)}
  run = jax.jit(lambda conn, affine: base._used_stage0_cells(sources[1], sources, cell, cache,
                                                             conn, affine))
  for seed in range(6):
    conn = rng.integers(0, 2, (n, n)).astype(np.int32)
    on = [j for j in range(1, n) if conn[0, j]]
    for affine in (True, False):
      calls.clear()
      x, chains = jax.block_until_ready(run(conn, affine))
      jax.effects_barrier()
      np.testing.assert_array_equal(x, up(n - 1, sources[1]))
      np.testing.assert_allclose(chains, sum((want[j, 0] for j in on), 0 * want[1, 0]),
                                 rtol=1e-6)
      chain_calls = (1 if on else 0) if affine else len(on)
      assert sorted(calls) == [0] * chain_calls + [n - 1], (conn[0], affine)
