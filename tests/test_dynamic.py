"""Dynamic mode: one compiled program for any genotype, equal to the static network."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasdip_jax.nets import cells
from nasdip_jax.nets import dynamic
from nasdip_jax.nets import nasdip
from nasdip_jax.space import codec
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import lists

W = 16  # the smallest width at which every kind is buildable (pixel shuffle + split: 16/4/4)
PX = 32
Z = jax.random.uniform(jax.random.key(0), (1, PX, PX, 1)) * 0.1


def _one_genotype_per_kind():
  picks = {}
  for i, cell in enumerate(gt.cells(gt.Space.reference(W))):
    kind = codec.cell_kind(cell)
    if kind not in picks:
      conn = np.random.default_rng(i).integers(0, 2, (5, 5))
      picks[kind] = gt.Genotype(cell, tuple(map(tuple, conn)))
  return [picks[k] for k in dynamic.KINDS]


@pytest.fixture(scope="module")
def dyn_forward():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def fwd(graphdef, params, z, code):
    return nnx.merge(graphdef, params)(z, code)
  return fwd


def test_every_kind_matches_static_through_one_compilation(dyn_forward):
  z = Z
  genotypes = _one_genotype_per_kind()
  assert len(genotypes) == len(dynamic.KINDS) == 15
  for i, g in enumerate(genotypes):
    static = nasdip.NasDipNet(1, 1, g, width=W, rngs=nnx.Rngs(i))
    graphdef, params = nnx.split(dynamic.from_static(static, W))
    got = dyn_forward(graphdef, params, z, codec.encode(g, W))
    np.testing.assert_allclose(np.asarray(got), np.asarray(static(z)), atol=2e-5,
                               err_msg=g.cell.describe())


def test_vmapped_cohort_of_different_genotypes():
  """Four genotypes of four kinds vmapped (every branch runs, selected per member) equal each
  one alone. Width 2: six kinds build, the others are zeros branches (a smaller program)."""
  w = 2
  buildable = dict(zip(codec.KINDS, codec.buildable_kinds(w)))
  picks = {}
  for i, cell in enumerate(gt.cells(gt.Space.reference(w))):
    kind = codec.cell_kind(cell)
    if buildable[kind] and kind not in picks:
      conn = np.random.default_rng(i).integers(0, 2, (5, 5))
      picks[kind] = gt.Genotype(cell, tuple(map(tuple, conn)))
  genotypes = list(picks.values())[:4]
  assert len({codec.cell_kind(g.cell) for g in genotypes}) == 4
  nets = [dynamic.from_static(nasdip.NasDipNet(1, 1, g, width=w, rngs=nnx.Rngs(i)), w)
          for i, g in enumerate(genotypes)]
  graphdef, _ = nnx.split(nets[0])
  params = jax.tree.map(lambda *a: jnp.stack(a), *[nnx.split(n)[1] for n in nets])
  codes = codec.stack_codes([codec.encode(g, w) for g in genotypes])
  forward = lambda p, c: nnx.merge(graphdef, p)(Z, c)
  batched = jax.jit(jax.vmap(forward))(params, codes)
  single = jax.jit(forward)
  for i, (n, g) in enumerate(zip(nets, genotypes)):
    np.testing.assert_allclose(np.asarray(batched[i]),
                               np.asarray(single(nnx.split(n)[1], codec.encode(g, w))),
                               atol=2e-5)


def test_init_draws_only_inside_the_kernel_window():
  g = gt.Genotype(gt.Cell("bilinear", "conv", 3, "ReLU"), ((0,) * 5,) * 5)
  flat = dynamic.init_cell_params(jax.random.key(0), codec.encode(g, W), W)
  assert flat.shape == (9, dynamic.flat_size(W))
  w = np.asarray(flat[0, :dynamic.K * dynamic.K * W * W]).reshape(dynamic.K, dynamic.K, W, W)
  inner = w[2:5, 2:5]
  assert np.count_nonzero(w) == np.count_nonzero(inner) == inner.size
  bound = 1 / np.sqrt(W * 9)
  assert np.abs(inner).max() <= bound and np.std(inner) == pytest.approx(bound / np.sqrt(3), rel=0.1)
  assert not np.any(flat[0, w.size:])


def test_extended_genotypes_match_static_through_one_compilation():
  cells_ = [gt.Cell("bilinear", "conv", 3, "PReLU", 2), gt.Cell("bicubic", "trans_conv", 5, "SELU", 3),
            gt.Cell("nearest", "sep_conv", 3, "PReLU", 3), gt.Cell("trans_conv", "identity", 3, "PReLU", 2),
            gt.Cell("pixel_shuffle", "split_stack_sum", 3, "LeakyReLU", 2, True),
            gt.Cell("pixel_shuffle", "conv", 5, "PReLU", 2), gt.Cell("bilinear", "depth_wise_conv", 7, "ReLU", 3)]

  @jax.jit
  @chex.assert_max_traces(n=1)
  def fwd(graphdef, params, code):
    return nnx.merge(graphdef, params)(Z, code)

  for i, cell in enumerate(cells_):
    conn = np.random.default_rng(i).integers(0, 2, (5, 5))
    g = gt.Genotype(cell, tuple(map(tuple, conn)))
    static = nasdip.NasDipNet(1, 1, g, width=W, rngs=nnx.Rngs(i))
    for m in static.cell_modules():  # distinct slopes, so that both PReLU applications show
      for a, v in ((m.act1, 0.1), (m.act2, 0.4)):
        if a.slope is not None:
          a.slope[...] = jnp.full((1,), v)
    graphdef, params = nnx.split(dynamic.from_static(static, W, extended=True))
    got = fwd(graphdef, params, codec.encode(g, W, extended=True))
    np.testing.assert_allclose(np.asarray(got), np.asarray(static(Z)), atol=2e-5,
                               err_msg=cell.describe())


def test_encode_rejects_what_the_dynamic_space_lacks():
  with pytest.raises(gt.InvalidGenotype, match="extended dynamic network"):
    codec.encode(gt.Genotype(gt.Cell("bilinear", "conv", 3, "ReLU", 2), ((0,) * 5,) * 5), W)
  with pytest.raises(gt.InvalidGenotype, match="groups"):
    codec.encode(gt.from_name("240_" + "0" * 25), W)


def test_the_522_isnas_models_encode_and_every_sixth_runs(dyn_forward):
  """All 522 encode into the dynamic space; every sixth (87, each cell family represented) runs
  to a finite, distinct output in (0, 1). Random genotypes at scale: benchmarks/space_scan.py."""
  lines = lists.names("nas_dataset_522")
  codes = [codec.encode(gt.from_name(line), W) for line in lines]
  assert len(codes) == 522
  net = dynamic.DynamicNasDipNet(1, 1, width=W, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(net)
  init = jax.jit(lambda key, code: dynamic.init_cell_params(key, code, W))
  outs = []
  for i, code in enumerate(codes[::6]):
    params["cell_params"] = params["cell_params"].replace(init(jax.random.key(i), code))
    outs.append(dyn_forward(graphdef, params, Z, code))
  outs = np.stack([np.asarray(o) for o in outs])
  assert outs.shape == (87, 1, PX, PX, 1)
  assert np.all(np.isfinite(outs)) and np.all((outs > 0) & (outs < 1))
  assert len({o.tobytes() for o in outs}) == 87


def test_widths_that_cannot_build_every_kind_run_the_others():
  """At width 8 a pixel shuffle leaves 2 channels, too few for split_stack_sum: that kind's
  genotypes are refused, and every kind of the space's cells at that width runs, through
  `cell_forward` as the static cell and through `fresh_cell_forward` as its embedded draws."""
  w = 8
  x = jax.random.normal(jax.random.key(0), (1, 8, 8, w))
  cells_ = {}
  for cell in gt.cells(gt.Space.reference(w)):
    cells_.setdefault(codec.cell_kind(cell), cell)
  assert codec.buildable_kinds(w) == tuple(k in cells_ for k in dynamic.KINDS)
  missing = [k for k in dynamic.KINDS if k not in cells_]
  assert missing == [("ps_first", "split_stack_sum")]
  with pytest.raises(gt.InvalidGenotype, match="split_stack_sum needs input channels"):
    codec.encode(gt.Genotype(gt.Cell("pixel_shuffle", "split_stack_sum", 3, "ReLU"),
                               ((0,) * 5,) * 5), w)
  embedded = jax.jit(lambda flat, code: dynamic.cell_forward(flat, code, x, w))
  fresh = jax.jit(lambda key, code: dynamic.fresh_cell_forward(key, code, x, w))
  for i, (kind, cell) in enumerate(cells_.items()):
    code = codec.encode(gt.Genotype(cell, ((0,) * 5,) * 5), w)
    static = cells.UpCell(cell, w, rngs=nnx.Rngs(i))
    flat = dynamic.embed_static_cell(static, w)
    np.testing.assert_allclose(embedded(flat, code), static(x), atol=1e-5, err_msg=str(kind))
    key = jax.random.key(i)
    drawn = dynamic.embed_kind_params(dynamic.draw_kind_params(key, kind, cell.kernel, w), kind, w)
    np.testing.assert_allclose(fresh(key, code), embedded(drawn, code), atol=1e-5,
                               err_msg=str(kind))


def test_fresh_cells_of_interpolation_kinds_match_their_embedded_parameters():
  """`fresh_cell_forward` (the scorer's; for nearest upsampling its convolutions at the input's
  resolution, `layers.nearest_up_conv`) against `cell_forward` with the same draws embedded in
  7 x 7: every interpolation, the transforms with convolutions, every kernel size, the
  activations in turn, one compilation each."""
  x = jax.random.normal(jax.random.key(0), (1, 16, 16, W))
  fresh = jax.jit(chex.assert_max_traces(n=1)(
      lambda key, code: dynamic.fresh_cell_forward(key, code, x, W)))
  embedded = jax.jit(chex.assert_max_traces(n=1)(
      lambda flat, code: dynamic.cell_forward(flat, code, x, W)))
  for i, (interp, t, k) in enumerate((interp, t, k) for interp in dynamic.INTERPS
                                     for t in dynamic.NEAREST_PHASE_TRANSFORMS
                                     for k in gt.KERNELS):
    cell = gt.Cell(interp, t, k, ("none", "ReLU", "LeakyReLU", "SELU")[(i + i // 4) % 4])
    code = codec.encode(gt.Genotype(cell, ((0,) * 5,) * 5), W)
    key = jax.random.key(i)
    kind = codec.cell_kind(cell)
    flat = dynamic.embed_kind_params(dynamic.draw_kind_params(key, kind, k, W), kind, W)
    np.testing.assert_allclose(fresh(key, code), embedded(flat, code), atol=1e-5,
                               err_msg=cell.describe())
