"""Every constructible NAS-DIP cell against the reference outputs (tests/testdata/cells)."""

import json
import os

import numpy as np
import pytest
from flax import nnx

from conftest import TESTDATA
from nasdip_jax.nets import cells
from nasdip_jax.space import genotype as gt

CELLS = os.path.join(TESTDATA, "cells")
INDEX = json.load(open(os.path.join(CELLS, "index.json")))
FILES = sorted(v["id"] for v in INDEX.values() if v["file"])
nhwc = lambda a: a.transpose(0, 2, 3, 1)


def load_cell_weights(module: cells.UpCell, fixture) -> int:
  """Copies reference state_dict tensors into the module; returns how many were used."""
  cell = module.cell
  used = 0
  t_prefix = "0.op." if cell.transform_first else "1.op."
  for i, op in enumerate(module.transform.ops):
    name = f"{t_prefix}{i}"
    if isinstance(op, cells.ConvTranspose):
      op.kernel[...] = fixture[name + ".weight"]
      op.bias[...] = fixture[name + ".bias"]
      used += 2
    else:
      op.kernel[...] = fixture[name + ".weight"].transpose(2, 3, 1, 0)
      used += 1
  if module.prim is not None:
    module.prim.kernel[...] = fixture["0.op.0.weight"]
    module.prim.bias[...] = fixture["0.op.0.bias"]
    used += 2
  return used


def test_fixture_set_is_complete():
  assert len(FILES) == 300


@pytest.mark.parametrize("cell_id", FILES)
def test_cell_matches_reference(cell_id):
  fixture = np.load(os.path.join(CELLS, f"cell_{cell_id:03d}.npz"))
  channels = int(fixture["channels"])
  cell = gt.cell_from_id(cell_id)
  if 249 <= cell_id <= 251:  # pixel shuffle -> identity: C/4 outputs, unbuildable in a network
    assert "outputs 2 channels" in gt.cell_error(cell, channels)
    return
  module = cells.UpCell(cell, channels, rngs=nnx.Rngs(0))
  assert load_cell_weights(module, fixture) == len(fixture["param_names"])
  assert cells.num_cell_params(cell, channels) == INDEX[str(cell_id)]["n_params"]
  out = np.asarray(module(nhwc(fixture["input"])))
  np.testing.assert_allclose(out, nhwc(fixture["output"]), rtol=0, atol=1e-5)


def test_pixel_shuffle_channel_order():
  x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)  # channels 4c + 2i + j
  out = np.asarray(cells.pixel_shuffle(x))
  assert out.shape == (1, 2, 2, 2)
  np.testing.assert_array_equal(out[0, :, :, 0], [[0, 1], [2, 3]])
  np.testing.assert_array_equal(out[0, :, :, 1], [[4, 5], [6, 7]])


@pytest.mark.parametrize("dilation,activation", [(2, "SELU"), (3, "PReLU")])
def test_extended_space_cells_build_and_keep_shape(dilation, activation):
  cell = gt.Cell("bilinear", "conv", 3, activation, dilation)
  module = cells.UpCell(cell, 8, rngs=nnx.Rngs(0))
  out = module(np.random.default_rng(0).random((1, 8, 8, 8)).astype(np.float32))
  assert out.shape == (1, 16, 16, 8)
  assert module.transform.ops[0].dilation == dilation
