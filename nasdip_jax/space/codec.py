"""A genotype as arrays (`GenotypeCode`), the form the dynamic network (`nets.dynamic`) and the
training-free scorer take, so one compiled program serves every genotype: each cell's
structural kind (interpolation -> T, pixel shuffle -> T, T -> pixel shuffle, transposed-conv
primitive; T the transform), interpolation, kernel size, activation, dilation and the
connection table as int32 arrays."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nasdip_jax.space import genotype as gt

FLAT_TRANSFORMS = ("conv", "trans_conv", "split_stack_sum", "sep_conv")
KINDS = (tuple(("interp", t) for t in gt.TRANSFORMS)
         + tuple(("ps_first", t) for t in FLAT_TRANSFORMS)
         + tuple(("t_first", t) for t in FLAT_TRANSFORMS)
         + (("tconv_prim", "identity"),))
INTERPS = ("bilinear", "bicubic", "nearest")
DYNAMIC_ACTIVATIONS = ("none", "ReLU", "LeakyReLU", "SELU", "PReLU")


class GenotypeCode(NamedTuple):
  """A genotype as int32 arrays (a pytree: stacks and vmaps over candidates)."""
  kind: jax.Array      # index into KINDS
  interp: jax.Array    # index into INTERPS (interpolation kinds)
  kernel: jax.Array    # 1, 3, 5 or 7
  act: jax.Array       # index into DYNAMIC_ACTIVATIONS
  conn: jax.Array      # (5, 5) 0/1
  dilation: jax.Array  # 1, 2 or 3 (extended networks only)


def cell_kind(cell: gt.Cell) -> tuple:
  if cell.primitive == "trans_conv":
    return ("tconv_prim", "identity")
  if cell.transform_first:
    return ("t_first", cell.transform)
  if cell.primitive == "pixel_shuffle":
    return ("ps_first", cell.transform)
  return ("interp", cell.transform)


def encode(genotype: gt.Genotype, width: int = 128, extended: bool = False) -> GenotypeCode:
  """The array form of a buildable genotype; raises InvalidGenotype outside the network's space
  (dilation and PReLU only for an extended network)."""
  cell = gt.validate(genotype, width).cell
  if not extended and (cell.dilation != 1 or cell.activation == "PReLU"):
    raise gt.InvalidGenotype(f"{cell.describe()}: dilation and PReLU need an extended dynamic "
                             "network (extended=True)")
  i32 = lambda v: jnp.asarray(v, jnp.int32)
  return GenotypeCode(
      kind=i32(KINDS.index(cell_kind(cell))),
      interp=i32(INTERPS.index(cell.primitive) if cell.primitive in INTERPS else 0),
      kernel=i32(cell.kernel), act=i32(DYNAMIC_ACTIVATIONS.index(cell.activation)),
      conn=i32(np.array(genotype.connections)), dilation=i32(cell.dilation))


def stack_codes(codes) -> GenotypeCode:
  return jax.tree.map(lambda *a: jnp.stack(a), *codes)


def _kind_cell(kind) -> gt.Cell:
  """A cell of the kind: whether it builds at a width depends on its kind alone."""
  stage, t = kind
  primitive = {"interp": "bilinear", "tconv_prim": "trans_conv"}.get(stage, "pixel_shuffle")
  return gt.Cell(primitive, t, 3, "ReLU", transform_first=stage == "t_first")


@functools.lru_cache(maxsize=None)
def buildable_kinds(width: int) -> tuple:
  """Per kind, whether its cells build at `width` (every kind when width % 16 == 0; e.g. at 8,
  a pixel shuffle leaves 2 channels, too few to split into 4): `encode` refuses the others'
  genotypes, so the dynamic network's branches for them only return zeros."""
  return tuple(gt.cell_error(_kind_cell(kind), width) is None for kind in KINDS)
