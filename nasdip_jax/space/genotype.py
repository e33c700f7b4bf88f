"""NAS-DIP genotypes: an upsampling cell plus a 5x5 cross-level connection table.

A `Cell` is (primitive, transform, kernel, activation, dilation, transform_first); a `Genotype` adds
`connections[r][j]` (row r = decoder stage at H/2^r, 0 = full resolution; column j = source: 0 = the
input z, 1..4 = encoder outputs enc1..enc4), the layout of NAS-DIP's `skip_index` and ISNAS-DIP's
25-bit names. Codecs: the reference cell IDs 0..323, the names `<id>_<25 bits>` and
`0_<id>_iteration_4000_sigma_25_skip_<25 bits>`, and the paper's shared level-difference pattern.
"""

import dataclasses
import itertools
import re
from typing import Iterator, Optional

import numpy as np

from nasdip_jax.errors import UserError

PRIMITIVES = ("bilinear", "bicubic", "nearest", "pixel_shuffle", "trans_conv")
TRANSFORMS = ("conv", "trans_conv", "split_stack_sum", "sep_conv", "depth_wise_conv", "identity")
KERNELS = (1, 3, 5, 7)
DILATIONS = (1, 2, 3)
ACTIVATIONS = ("none", "ReLU", "LeakyReLU")
EXTENDED_ACTIVATIONS = ACTIVATIONS + ("SELU", "PReLU")
LEVELS = 5
NUM_CELL_IDS = 324


class InvalidGenotype(UserError):
  """A genotype the network cannot be built from; the message says why."""


@dataclasses.dataclass(frozen=True)
class Cell:
  """One upsampling cell: x2 primitive, then a feature transform (or the transform first, then a
  pixel shuffle when transform_first), each followed by the activation (identity ignores it)."""
  primitive: str
  transform: str
  kernel: int
  activation: str
  dilation: int = 1
  transform_first: bool = False

  def describe(self) -> str:
    parts = [self.primitive, self.transform, f"{self.kernel}x{self.kernel}", self.activation]
    if self.transform_first:
      parts = [self.transform, self.primitive, f"{self.kernel}x{self.kernel}", self.activation]
    text = " -> ".join(parts)
    return text + (f" (dilation {self.dilation})" if self.dilation != 1 else "")


@dataclasses.dataclass(frozen=True)
class Genotype:
  cell: Cell
  connections: tuple  # 5 rows of 5 ints in {0, 1}

  def __post_init__(self):
    conn = tuple(tuple(int(v) for v in row) for row in self.connections)
    if len(conn) != LEVELS or any(len(r) != LEVELS for r in conn) or any(
        v not in (0, 1) for r in conn for v in r):
      raise InvalidGenotype(f"connections must be a {LEVELS}x{LEVELS} table of 0/1")
    object.__setattr__(self, "connections", conn)


@dataclasses.dataclass(frozen=True)
class Space:
  """Which choices a sampler or enumerator may take. `reference()` is the released code's space."""
  primitives: tuple = PRIMITIVES
  transforms: tuple = TRANSFORMS
  kernels: tuple = KERNELS
  activations: tuple = ACTIVATIONS
  dilations: tuple = (1,)
  allow_transform_first: bool = True
  channels: int = 128

  @classmethod
  def reference(cls, channels: int = 128) -> "Space":
    return cls(channels=channels)

  @classmethod
  def extended(cls, channels: int = 128) -> "Space":
    """Adds the paper's dilations (2, 3) and SELU / PReLU, which the reference code ignores."""
    return cls(dilations=DILATIONS, activations=EXTENDED_ACTIVATIONS, channels=channels)


# ---------------------------------------------------------------- reference cell IDs 0..323

def cell_from_id(cell_id: int) -> Cell:
  """Decodes a reference cell ID exactly as NAS-DIP's gen_layer does."""
  if not 0 <= cell_id < NUM_CELL_IDS:
    raise InvalidGenotype(f"cell id must be in 0..{NUM_CELL_IDS - 1}, got {cell_id}")
  if cell_id >= 312:
    return Cell("trans_conv", "identity", KERNELS[(cell_id // 3) % 4], ACTIVATIONS[cell_id % 3])
  m = cell_id % 63
  if cell_id >= 252:
    prim, first = "pixel_shuffle", True
  else:
    prim, first = PRIMITIVES[cell_id // 63], False
  transform = "identity" if m >= 60 else TRANSFORMS[(m // 12) % 5]
  kernel = 1 if m >= 60 else KERNELS[(m // 3) % 4]
  return Cell(prim, transform, kernel, ACTIVATIONS[m % 3], 1, first)


def cell_to_id(cell: Cell) -> int:
  """The reference ID of a cell; cells outside the reference code's space have none."""
  if cell.dilation != 1 or cell.activation not in ACTIVATIONS:
    raise InvalidGenotype(f"{cell.describe()} is outside the reference space (no cell id)")
  act = ACTIVATIONS.index(cell.activation)
  if cell.primitive == "trans_conv":
    if cell.transform != "identity" or cell.transform_first:
      raise InvalidGenotype(f"{cell.describe()}: the trans_conv primitive only pairs with identity")
    return 312 + 3 * KERNELS.index(cell.kernel) + act
  if cell.transform == "identity":
    if cell.transform_first:
      raise InvalidGenotype("identity cannot run before a pixel shuffle")
    return 63 * PRIMITIVES.index(cell.primitive) + 60 + act
  m = 12 * TRANSFORMS.index(cell.transform) + 3 * KERNELS.index(cell.kernel) + act
  if cell.transform_first:
    if cell.primitive != "pixel_shuffle":
      raise InvalidGenotype("only the pixel shuffle can follow the transform")
    return 252 + m
  return 63 * PRIMITIVES.index(cell.primitive) + m


# ---------------------------------------------------------------- validation

def cell_error(cell: Cell, channels: int = 128) -> Optional[str]:
  """Why `cell` cannot be built at `channels` (C -> C), or None when it can."""
  if cell.primitive not in PRIMITIVES:
    return f"unknown primitive {cell.primitive!r}"
  if cell.transform not in TRANSFORMS:
    return f"unknown transform {cell.transform!r}"
  if cell.kernel not in KERNELS:
    return f"kernel must be one of {KERNELS}, got {cell.kernel}"
  if cell.activation not in EXTENDED_ACTIVATIONS:
    return f"unknown activation {cell.activation!r}"
  if cell.dilation not in DILATIONS:
    return f"dilation must be one of {DILATIONS}, got {cell.dilation}"
  if cell.transform_first and cell.primitive != "pixel_shuffle":
    return "only the pixel shuffle can follow the transform"
  if cell.primitive == "trans_conv" and cell.transform != "identity":
    return "the trans_conv primitive only pairs with identity (as in the reference space)"
  ps = cell.primitive == "pixel_shuffle"
  if ps and channels % 4:
    return f"pixel shuffle needs channels divisible by 4, got {channels}"
  c_in = channels // 4 if ps and not cell.transform_first else channels
  c_out = 4 * channels if cell.transform_first else channels
  if cell.transform == "identity" and c_in != c_out:
    return f"identity after a pixel shuffle outputs {c_in} channels, not {channels}"
  if cell.transform == "depth_wise_conv" and c_in % c_out:
    return f"depth_wise_conv has {c_in} inputs but groups = {c_out}"
  if cell.transform == "split_stack_sum" and (c_in % 4 or c_in < 4):
    return f"split_stack_sum needs input channels divisible by 4, got {c_in}"
  return None


def validate(genotype: Genotype, channels: int = 128) -> Genotype:
  """Returns the genotype, or raises InvalidGenotype with the reason it cannot be built."""
  reason = cell_error(genotype.cell, channels)
  if reason:
    raise InvalidGenotype(f"cannot build {genotype.cell.describe()}: {reason}")
  return genotype


def is_valid(genotype: Genotype, channels: int = 128) -> bool:
  return cell_error(genotype.cell, channels) is None


# ---------------------------------------------------------------- names

_NAME = re.compile(r"^(?:0_)?(\d+)_(?:iteration_\d+_sigma_\d+_skip_)?([01]{25})$")


def bits_of(connections) -> str:
  return "".join(str(v) for row in connections for v in row)


def connections_of(bits: str) -> tuple:
  if len(bits) != LEVELS * LEVELS or set(bits) - {"0", "1"}:
    raise InvalidGenotype(f"connection bits must be 25 characters of 0/1, got {bits!r}")
  return tuple(tuple(int(b) for b in bits[r * LEVELS:(r + 1) * LEVELS]) for r in range(LEVELS))


def from_name(name: str) -> Genotype:
  """Parses `<cell id>_<25 bits>` (ISNAS models.csv uses a comma) or the 5000-candidate form."""
  m = _NAME.match(name.strip().replace(",", "_"))
  if not m:
    raise InvalidGenotype(f"not a genotype name: {name!r} (want '<cell id>_<25 bits>')")
  return Genotype(cell_from_id(int(m.group(1))), connections_of(m.group(2)))


def to_name(genotype: Genotype) -> str:
  return f"{cell_to_id(genotype.cell)}_{bits_of(genotype.connections)}"


# ---------------------------------------------------------------- shared level-difference pattern

def pattern_differences(levels: int = LEVELS) -> tuple:
  """The level differences j - r a connection can span: -(levels-1) .. levels-1."""
  return tuple(range(-(levels - 1), levels))


def from_pattern(cell: Cell, pattern: tuple) -> Genotype:
  """A genotype whose connection (r, j) is on iff pattern[(j - r) + 4] is: one bit per level
  difference, shared by every stage (2^(2*5-1) = 512 patterns)."""
  if len(pattern) != 2 * LEVELS - 1:
    raise InvalidGenotype(f"a shared pattern has {2 * LEVELS - 1} bits, got {len(pattern)}")
  conn = tuple(tuple(int(pattern[j - r + LEVELS - 1]) for j in range(LEVELS))
               for r in range(LEVELS))
  return Genotype(cell, conn)


def to_pattern(genotype: Genotype) -> Optional[tuple]:
  """The shared pattern of a genotype, or None if its table is not level-shift invariant."""
  pattern = [None] * (2 * LEVELS - 1)
  for r in range(LEVELS):
    for j in range(LEVELS):
      d = j - r + LEVELS - 1
      if pattern[d] is None:
        pattern[d] = genotype.connections[r][j]
      elif pattern[d] != genotype.connections[r][j]:
        return None
  return tuple(pattern)


# ---------------------------------------------------------------- enumerate, sample, mutate

def cells(space: Space) -> Iterator[Cell]:
  """Every buildable cell of `space` (its reference-ID order where one exists)."""
  for prim, transform, kernel, act, dil, first in itertools.product(
      space.primitives, space.transforms, space.kernels, space.activations, space.dilations,
      (False, True) if space.allow_transform_first else (False,)):
    if transform == "identity" and prim != "trans_conv" and (kernel != 1 or dil != 1):
      continue  # kernel and dilation only matter to identity after the trans_conv primitive
    cell = Cell(prim, transform, kernel, act, dil, first)
    if cell_error(cell, space.channels) is None:
      yield cell


def sample(key, space: Space = Space(), connection_prob: float = 0.5) -> Genotype:
  """A uniformly random buildable cell and i.i.d. Bernoulli connections, from a JAX PRNG key."""
  import jax  # pylint: disable=import-outside-toplevel  # only the key derivation needs it
  seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
  rng = np.random.default_rng(seed)
  options = list(cells(space))
  cell = options[rng.integers(len(options))]
  conn = (rng.random((LEVELS, LEVELS)) < connection_prob).astype(int)
  return Genotype(cell, tuple(map(tuple, conn)))


def mutate(key, genotype: Genotype, space: Space = Space(), rate: float = 0.1) -> Genotype:
  """Flips each connection with probability `rate` and redraws one cell field with probability
  `rate` each, keeping the result buildable."""
  import jax  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
  conn = np.array(genotype.connections) ^ (rng.random((LEVELS, LEVELS)) < rate)
  choices = {"primitive": space.primitives, "transform": space.transforms,
             "kernel": space.kernels, "activation": space.activations, "dilation": space.dilations}
  for _ in range(100):
    fields = {f: (rng.choice(v).item() if rng.random() < rate else getattr(genotype.cell, f))
              for f, v in choices.items()}
    cell = dataclasses.replace(genotype.cell, **fields)
    if cell_error(cell, space.channels) is None:
      return Genotype(cell, tuple(map(tuple, conn.astype(int))))
  return Genotype(genotype.cell, tuple(map(tuple, conn.astype(int))))
