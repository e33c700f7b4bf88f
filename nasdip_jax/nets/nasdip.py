"""NAS-DIP's cross-scale network (DIP/models/cross_skip.py, model_{task}.py) from a genotype.

Levels: L0 = the input z at H, L1..L5 = enc1..enc5 at H/2..H/32 (all `width` channels). Decoder
stage r (H/2^r, r = 4..0) is DecoderBlock(up_r(previous) + sum of the selected sources j):
j = r through the same-scale 1x1 SkipBlock, j < r through a chain of stride-2 DownsampleBlocks,
j > r through a chain of x2 upsampling cells; one module per level transition, shared by every
chain through it. All modules exist whatever the table says (as in the reference).

Two modes share everything but the cells: `NasDipNet` (static: the genotype is Python data, only
its cells are built) and `DynamicNasDipNet` in nets/dynamic.py (the genotype is an array input).
"""

from flax import nnx
import jax
import jax.numpy as jnp

from nasdip_jax.nets import cells
from nasdip_jax.nets import layers
from nasdip_jax.space import genotype as gt

N = gt.LEVELS
NUM_CELLS = 2 * N - 1  # cell positions: up[0..3] (level l+1 -> l), then the decoder's dec_up[0..4]


class _Encoder(nnx.Module):

  def __init__(self, i, o, *, pad, conv_impl, rngs):
    self.down = layers.ConvBNAct(i, o, 3, stride=2, pad=pad, conv_impl=conv_impl, rngs=rngs)
    self.conv = layers.ConvBNAct(o, o, 3, pad=pad, conv_impl=conv_impl, rngs=rngs)

  def __call__(self, x):
    return self.conv(self.down(x))


class _Decoder(nnx.Module):
  """BN, 3x3 conv, 3x3 conv, 1x1 conv (each conv followed by BN and LeakyReLU)."""

  def __init__(self, c, *, pad, conv_impl, rngs):
    self.bn = layers.BatchNorm(c)
    block = lambda k: layers.ConvBNAct(c, c, k, pad=pad, conv_impl=conv_impl, rngs=rngs)
    self.conv1, self.conv2, self.conv3 = block(3), block(3), block(1)

  def __call__(self, x):
    return self.conv3(self.conv2(self.conv1(self.bn(x))))


class CrossScaleBase(nnx.Module):
  """The genotype-independent modules and the forward pass, given a cell function."""

  def _build_fixed(self, in_ch, out_ch, width, pad, conv_impl, rngs):
    kw = dict(pad=pad, conv_impl=conv_impl, rngs=rngs)
    self.enc = nnx.List([_Encoder(in_ch if l == 0 else width, width, **kw) for l in range(N)])
    self.same = nnx.List([layers.ConvBNAct(in_ch if l == 0 else width, width, 1, **kw)
                          for l in range(N)])
    # down[l]: level l -> l + 1 (l = 0..3)
    self.down = nnx.List([layers.ConvBNAct(in_ch if l == 0 else width, width, 3, stride=2, **kw)
                          for l in range(N - 1)])
    self.dec = nnx.List([_Decoder(width, **kw) for _ in range(N)])
    self.head = layers.Conv(width, out_ch, 1, pad=pad, conv_impl=conv_impl, rngs=rngs)

  def _chain(self, sources, j, l, cell, cache):
    """Source j carried to level l by the down / up modules; each (j, l) is computed once per
    forward pass and shared by every route through it."""
    if (j, l) not in cache:
      if j == l:
        cache[j, l] = sources[j]
      elif j < l:
        cache[j, l] = self.down[l - 1](self._chain(sources, j, l - 1, cell, cache))
      else:
        cache[j, l] = cell(l, self._chain(sources, j, l + 1, cell, cache))
    return cache[j, l]

  def _route(self, sources, j, r, cell, cache):
    if j == r:
      return self.same[j](sources[j])
    return self._chain(sources, j, r, cell, cache)

  def _all_up_chains(self, sources, cell, cache):
    """Every upward chain at once: per level, one cell call on the batch of all inputs passing
    through it (cells act per sample, no batch statistics), so each position is traced once."""
    carried = []  # chain(j, l + 1) for j = N - 1, N - 2, ..., l + 1
    for l in reversed(range(N - 1)):
      carried.append(sources[l + 1])
      carried = jnp.split(cell(l, jnp.concatenate(carried, axis=0)), len(carried))
      for i, y in enumerate(carried):
        cache[N - 1 - i, l] = y

  def _level_inputs(self, r, x, sources, cache, conn):
    """The inputs of level r's cells, [x] + the upward chains into level r, and whether each
    is used: chain (j, r) is used if some stage <= r takes source j."""
    chains = range(r + 1, N)
    inputs = [x] + [sources[r + 1] if j == r + 1 else cache[j, r + 1] for j in chains]
    return inputs, [True] + [jnp.any(conn[:r + 1, j] > 0) for j in chains]

  @staticmethod
  def _packed_cells(r, inputs, used, cell, out_rows, row):
    """The cell of every used input, one at a time in a loop of traced length over the used
    ones packed first (position N - 1 + r for inputs[0], the decoder's x; r for the others:
    `cell` takes a traced position), so one trace per level serves both and an unused input
    costs no cell. Input i's cell is added into row(its packed place) of an (out_rows, ...)
    zero array; returns it and each input's packed place."""
    used = jnp.stack(used)
    order = jnp.argsort(~used, stable=True)  # x, then the used chains
    pos = jnp.asarray([N - 1 + r] + [r] * (len(inputs) - 1))[order]
    x = jnp.concatenate(inputs, axis=0)[order]
    _, h, w, c = x.shape
    out = jax.lax.fori_loop(
        0, jnp.sum(used), lambda i, out: out.at[row(i)].add(cell(pos[i], x[i][None])[0]),
        jnp.zeros((out_rows, 2 * h, 2 * w, c), x.dtype))
    return out, jnp.argsort(order)

  def _used_level_cells(self, r, x, sources, cell, cache, conn):
    """Stage r's cell on the decoder's x and, at the same level, the upward chains a traced
    table `conn` uses (forward only), by `_packed_cells` (on average half the full-resolution
    chains are unused). Fills cache[j, r] for j > r (zeros where unused); returns the cell of
    x."""
    inputs, used = self._level_inputs(r, x, sources, cache, conn)
    packed, slot = self._packed_cells(r, inputs, used, cell, len(inputs), lambda i: i)
    for i, j in enumerate(range(r + 1, N), start=1):
      cache[j, r] = jax.lax.dynamic_index_in_dim(packed, slot[i])
    return packed[:1]

  def _used_stage0_cells(self, x, sources, cell, cache, conn, affine=None):
    """Level 0's `_used_level_cells`, whose chains only stage 0 reads: (the cell of x, the sum
    of the cells of the chains stage 0 adds), the sum accumulated in the loop. `affine` (a
    traced bool: the cells are affine maps): the n chains cost one cell call, the sum being
    n cell(mean of their inputs)."""
    inputs, used = self._level_inputs(0, x, sources, cache, conn)
    scale = 1.0
    if affine is not None:
      weight = jnp.stack(used[1:]).astype(x.dtype)
      count = jnp.sum(weight)
      inputs.append(sum(w * c for w, c in zip(weight, inputs[1:])) / jnp.maximum(count, 1.0))
      used = [used[0]] + [u & ~affine for u in used[1:]] + [affine & (count > 0)]
      scale = jnp.where(affine, count, 1.0)
    out, _ = self._packed_cells(0, inputs, used, cell, 2, lambda i: jnp.minimum(i, 1))
    return out[:1], scale * out[1:]

  def _forward(self, z, cell, gate, all_chains=False, used_chains=None, affine_cells=None):
    """cell(position, x) upsamples x2; gate(r, j, x, route) adds connection (r, j) or not;
    all_chains computes every upward chain up front (for gates that use every route);
    used_chains (a traced connection table) only those it uses, level by level with the
    decoder's cell (forward only; `cell` then also takes traced positions); with it,
    affine_cells (a traced bool: the cells are affine) runs stage 0's chains as one cell call
    (see `_used_stage0_cells`)."""
    sources = [z]
    for enc in self.enc:
      sources.append(enc(sources[-1]))
    x, cache = sources[-1], {}  # enc5
    if all_chains:
      self._all_up_chains(sources, cell, cache)
    for r in reversed(range(N)):
      routes = range(N)
      if used_chains is None or r == N - 1:
        x = cell(N - 1 + r, x)
      elif r > 0:
        x = self._used_level_cells(r, x, sources, cell, cache, used_chains)
      else:  # stage 0's upward chains arrive summed
        x, chains = self._used_stage0_cells(x, sources, cell, cache, used_chains, affine_cells)
        x, routes = x + chains, range(1)
      for j in routes:
        x = gate(r, j, x, lambda j=j, r=r: self._route(sources, j, r, cell, cache))
      x = self.dec[r](x)
    return jax.nn.sigmoid(self.head(x))


class NasDipNet(CrossScaleBase):
  """The NAS-DIP network of `genotype` for in_ch -> out_ch channels (static mode)."""

  def __init__(self, in_ch: int, out_ch: int, genotype: gt.Genotype, *, width: int = 128,
               pad: str = "reflection", conv_impl: str = "auto", rngs: nnx.Rngs):
    gt.validate(genotype, width)
    self.connections = genotype.connections
    self._build_fixed(in_ch, out_ch, width, pad, conv_impl, rngs)
    cell = lambda: cells.UpCell(genotype.cell, width, conv_impl=conv_impl, rngs=rngs)
    self.up = nnx.List([cell() for _ in range(N - 1)])    # up[l - 1]: level l -> l - 1
    self.dec_up = nnx.List([cell() for _ in range(N)])    # dec_up[r]: into stage r

  def cell_modules(self):
    """The cells by position (up[0..3], then dec_up[0..4])."""
    return list(self.up) + list(self.dec_up)

  def unused(self) -> list:
    """Modules no path of the connection table reaches (they exist but get no gradient)."""
    conn = self.connections
    names = [f"same.{j}" for j in range(N) if not conn[j][j]]
    names += [f"down.{l}" for l in range(N - 1)
              if not any(conn[r][j] for r in range(N) for j in range(r) if j <= l < r)]
    names += [f"up.{l - 1}" for l in range(1, N)
              if not any(conn[r][j] for r in range(N) for j in range(r + 1, N) if r < l <= j)]
    return names

  def __call__(self, z):
    cell_list = self.cell_modules()
    gate = lambda r, j, x, route: x + route() if self.connections[r][j] else x
    return self._forward(z, lambda pos, x: cell_list[pos](x), gate)


def gated_sum(conn):
  """A gate for traced tables: every route is computed (once, shared along its chain) and added
  where its connection is on. A `lax.cond` per route would skip the unselected ones but cannot
  share chains, and made the training step's compilation ~9x slower (width 16: 142 s)."""
  def gate(r, j, x, route):
    return x + jnp.where(conn[r, j] > 0, route(), 0.0)
  return gate
