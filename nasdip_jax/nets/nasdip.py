"""NAS-DIP's cross-scale network (DIP/models/cross_skip.py, model_{task}.py) from a genotype.

Levels: L0 = the input z at H, L1..L5 = enc1..enc5 at H/2..H/32 (all `width` channels). Decoder
stage r (H/2^r, r = 4..0) is DecoderBlock(up_r(previous) + sum of the selected sources j):
j = r through the same-scale 1x1 SkipBlock, j < r through a chain of stride-2 DownsampleBlocks,
j > r through a chain of x2 upsampling cells; one module per level transition, shared by every
chain through it. All modules exist whatever the table says (as in the reference).
"""

from flax import nnx
import jax

from nasdip_jax.nets import cells
from nasdip_jax.nets import layers
from nasdip_jax.space import genotype as gt


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


class NasDipNet(nnx.Module):
  """The NAS-DIP network of `genotype` for in_ch -> out_ch channels."""

  def __init__(self, in_ch: int, out_ch: int, genotype: gt.Genotype, *, width: int = 128,
               pad: str = "reflection", conv_impl: str = "auto", rngs: nnx.Rngs):
    gt.validate(genotype, width)
    self.connections = genotype.connections
    kw = dict(pad=pad, conv_impl=conv_impl, rngs=rngs)
    n = gt.LEVELS
    self.enc = nnx.List([_Encoder(in_ch if l == 0 else width, width, **kw) for l in range(n)])
    self.same = nnx.List([layers.ConvBNAct(in_ch if l == 0 else width, width, 1, **kw)
                          for l in range(n)])
    # down[l]: level l -> l + 1 (l = 0..3); up[l - 1]: level l -> l - 1 (l = 1..4)
    self.down = nnx.List([layers.ConvBNAct(in_ch if l == 0 else width, width, 3, stride=2, **kw)
                          for l in range(n - 1)])
    cell = lambda: cells.UpCell(genotype.cell, width, conv_impl=conv_impl, rngs=rngs)
    self.up = nnx.List([cell() for _ in range(n - 1)])
    self.dec_up = nnx.List([cell() for _ in range(n)])  # dec_up[r]: into stage r
    self.dec = nnx.List([_Decoder(width, **kw) for _ in range(n)])
    self.head = layers.Conv(width, out_ch, 1, pad=pad, conv_impl=conv_impl, rngs=rngs)

  def unused(self) -> list:
    """Modules no path of the connection table reaches (they exist but get no gradient)."""
    conn, n = self.connections, gt.LEVELS
    names = [f"same.{j}" for j in range(n) if not conn[j][j]]
    names += [f"down.{l}" for l in range(n - 1)
              if not any(conn[r][j] for r in range(n) for j in range(r) if j <= l < r)]
    names += [f"up.{l - 1}" for l in range(1, n)
              if not any(conn[r][j] for r in range(n) for j in range(r + 1, n) if r < l <= j)]
    return names

  def _route(self, sources, j, r):
    x = sources[j]
    if j == r:
      return self.same[j](x)
    for l in range(j, r) if j < r else range(j, r, -1):
      x = self.down[l](x) if j < r else self.up[l - 1](x)
    return x

  def __call__(self, z):
    sources = [z]
    for enc in self.enc:
      sources.append(enc(sources[-1]))
    x = sources[-1]  # enc5
    for r in reversed(range(gt.LEVELS)):
      x = self.dec_up[r](x)
      for j in range(gt.LEVELS):
        if self.connections[r][j]:
          x = x + self._route(sources, j, r)
      x = self.dec[r](x)
    return jax.nn.sigmoid(self.head(x))
