"""A genotype as a sequence of categorical decisions, for a controller that samples one decision
after another (NAS-DIP's RNN controller, following AutoGAN).

The cell's fields come first (primitive, transform, kernel, activation, then dilation and
transform-first when the space offers them), then the connections: the 25 bits of the 5x5 table
(`connections="table"`) or the 9 bits of the shared level-difference pattern (`"pattern"`).
Not every combination of cell fields is a buildable, distinct cell (the trans_conv primitive only
pairs with identity; identity ignores the kernel; some depthwise cells cannot be built), so each
cell decision comes with a feasibility table indexed by the decisions before it: a sampler that
masks the infeasible choices draws exactly the cells of `genotype.cells(space)`.
"""

import dataclasses
import functools
import itertools

import numpy as np

from nasdip_jax.errors import UserError
from nasdip_jax.space import genotype as gt

CONNECTIONS = ("table", "pattern")
_CELL_FIELDS = ("primitive", "transform", "kernel", "activation", "dilation", "transform_first")


@dataclasses.dataclass(frozen=True)
class Decisions:
  """The decision sequence over `space` (hashable: usable as a static argument of jit)."""
  space: gt.Space = gt.Space()
  connections: str = "table"

  def __post_init__(self):
    if self.connections not in CONNECTIONS:
      raise UserError(f"connections must be one of {CONNECTIONS}, got {self.connections!r}")
    if not any(True for _ in gt.cells(self.space)):
      raise UserError(f"the space {self.space} has no buildable cell")

  @functools.cached_property
  def _fields(self) -> tuple:
    """(field, options) of every cell field with more than one option."""
    s = self.space
    options = {"primitive": s.primitives, "transform": s.transforms, "kernel": s.kernels,
               "activation": s.activations, "dilation": s.dilations,
               "transform_first": (False, True) if s.allow_transform_first else (False,)}
    return tuple((f, tuple(options[f])) for f in _CELL_FIELDS if len(options[f]) > 1)

  @property
  def num_cell_decisions(self) -> int:
    return len(self._fields)

  @property
  def names(self) -> tuple:
    n = gt.LEVELS
    conn = ([f"conn_{r}{j}" for r in range(n) for j in range(n)] if self.connections == "table"
            else [f"diff_{d:+d}" for d in gt.pattern_differences()])
    return tuple(f for f, _ in self._fields) + tuple(conn)

  @property
  def sizes(self) -> tuple:
    num_conn = gt.LEVELS ** 2 if self.connections == "table" else 2 * gt.LEVELS - 1
    return tuple(len(o) for _, o in self._fields) + (2,) * num_conn

  def _cell(self, values: dict) -> gt.Cell:
    fixed = {"primitive": self.space.primitives[0], "transform": self.space.transforms[0],
             "kernel": self.space.kernels[0], "activation": self.space.activations[0],
             "dilation": self.space.dilations[0], "transform_first": False}
    return gt.Cell(**{**fixed, **values})

  @functools.cached_property
  def feasible(self) -> tuple:
    """Per cell decision k, a bool array over sizes[:k+1]: True where decisions 0..k can still
    end in a buildable, distinct cell. Connection decisions are always feasible."""
    valid_cells = set(gt.cells(self.space))
    shape = tuple(len(o) for _, o in self._fields)
    valid = np.zeros(shape, bool)
    for idx in itertools.product(*map(range, shape)):
      cell = self._cell({f: o[i] for (f, o), i in zip(self._fields, idx)})
      valid[idx] = cell in valid_cells
    return tuple(valid.any(axis=tuple(range(k + 1, len(shape)))) for k in range(len(shape)))

  def decode(self, actions) -> gt.Genotype:
    """The genotype of one action sequence (ints, one per decision)."""
    actions = [int(a) for a in actions]
    if len(actions) != len(self.sizes) or any(not 0 <= a < n for a, n in zip(actions, self.sizes)):
      raise gt.InvalidGenotype(f"not an action sequence of sizes {self.sizes}: {actions}")
    k = self.num_cell_decisions
    cell = self._cell({f: o[a] for (f, o), a in zip(self._fields, actions[:k])})
    bits = actions[k:]
    if self.connections == "pattern":
      return gt.validate(gt.from_pattern(cell, tuple(bits)), self.space.channels)
    return gt.validate(gt.Genotype(cell, gt.connections_of("".join(map(str, bits)))),
                       self.space.channels)

  def encode(self, genotype: gt.Genotype) -> tuple:
    """The action sequence of a genotype of this space (the inverse of decode)."""
    actions = []
    for f, options in self._fields:
      value = getattr(genotype.cell, f)
      if value not in options:
        raise gt.InvalidGenotype(f"{genotype.cell.describe()}: {f}={value!r} is not in the space")
      actions.append(options.index(value))
    for f in set(_CELL_FIELDS) - {f for f, _ in self._fields}:
      if getattr(genotype.cell, f) != getattr(self._cell({}), f):
        raise gt.InvalidGenotype(f"{genotype.cell.describe()}: {f} is fixed in this space")
    if self.connections == "table":
      return tuple(actions) + tuple(v for row in genotype.connections for v in row)
    pattern = gt.to_pattern(genotype)
    if pattern is None:
      raise gt.InvalidGenotype("the connection table is not a shared level-difference pattern")
    return tuple(actions) + tuple(pattern)

  def num_genotypes(self) -> int:
    return sum(1 for _ in gt.cells(self.space)) * 2 ** (len(self.sizes) - self.num_cell_decisions)
