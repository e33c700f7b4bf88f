"""Genotypes: the reference cell-ID decoding, names, validation, patterns, sampling, mutation."""

import json
import os
import re

import jax
import pytest

from conftest import TESTDATA
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import lists
from nasdip_jax.space import published

INDEX = json.load(open(os.path.join(TESTDATA, "cells", "index.json")))
UNBUILDABLE_IN_NET = {249, 250, 251}


@pytest.mark.parametrize("cell_id", range(gt.NUM_CELL_IDS))
def test_cell_id_decoding_matches_reference(cell_id):
  ref = INDEX[str(cell_id)]
  cell = gt.cell_from_id(cell_id)
  assert (cell.primitive, cell.transform, f"{cell.kernel}x{cell.kernel}", cell.activation) == (
      ref["primitive"], ref["conv_op"], ref["kernel"], ref["activation"])
  assert cell.transform_first == (ref["order"] == "conv_op_first")
  assert gt.cell_to_id(cell) == cell_id
  for channels, key in ((8, "status_c8"), (128, "status_c128")):
    buildable = ref[key] == "ok" and cell_id not in UNBUILDABLE_IN_NET
    assert (gt.cell_error(cell, channels) is None) == buildable, (channels, gt.cell_error(cell, channels))


def test_reference_space_enumerates_the_297_buildable_cells():
  ids = {gt.cell_to_id(c) for c in gt.cells(gt.Space.reference())}
  want = {int(k) for k, v in INDEX.items() if v["status_c128"] == "ok"} - UNBUILDABLE_IN_NET
  assert ids == want and len(ids) == 297
  extended = list(gt.cells(gt.Space.extended()))
  assert len(extended) > 297 and any(c.dilation == 3 for c in extended)


def test_isnas_522_models_decode_and_round_trip():
  lines = lists.names("nas_dataset_522")
  assert len(lines) == 522
  for line in lines:
    g = gt.validate(gt.from_name(line))
    assert gt.to_name(g) == line.replace(",", "_")


def test_cells_unbuildable_where_the_reference_fails():
  """The reference's gen_layer fails to construct 24 IDs at C = 8 and 128 (golden
  cells/failures.json), and at C = 8 12 more fail their forward pass (split_stack_sum after a
  pixel shuffle: chunks of 0 channels); IDs 249-251 (pixel shuffle -> identity) run as cells
  but output C/4 channels, so no network can use them."""
  failures = json.load(open(os.path.join(TESTDATA, "cells", "failures.json")))
  identity = {249, 250, 251}
  for channels, extra in ((8, "forward_failures_c8"), (128, "forward_failures_c128")):
    bad = {i for i in range(324) if gt.cell_error(gt.cell_from_id(i), channels)}
    assert bad == set(failures[f"construct_failures_c{channels}"]) | set(failures[extra]) | identity


def test_5000_candidates_decode_with_unbuildable_ones_rejected_by_reason():
  """Each candidate whose cell the reference cannot construct is refused for its groups, each
  with an identity after a pixel shuffle for its channels (cell IDs from the names, failing
  IDs from the golden cells/failures.json)."""
  names = lists.names("isnas_candidates_5000")
  assert len(names) == 5000
  failing = set(json.load(open(os.path.join(TESTDATA, "cells", "failures.json")))[
      "construct_failures_c128"])
  cell_ids = [int(re.match(r"(?:0_)?(\d+)_", name).group(1)) for name in names]
  want = {"groups": sum(i in failing for i in cell_ids),
          "identity": sum(i in (249, 250, 251) for i in cell_ids)}
  reasons = {}
  for name in names:
    g = gt.from_name(name)
    try:
      gt.validate(g)
    except gt.InvalidGenotype as e:
      key = "groups" if "groups" in str(e) else "identity" if "identity" in str(e) else str(e)
      reasons[key] = reasons.get(key, 0) + 1
  assert reasons == want


def test_bad_names_and_tables():
  for bad in ("158", "158_0101", "400_" + "0" * 25, "x_" + "1" * 25):
    with pytest.raises(gt.InvalidGenotype):
      gt.from_name(bad)
  with pytest.raises(gt.InvalidGenotype, match="5x5"):
    gt.Genotype(gt.cell_from_id(0), ((1, 0),))


def test_published_models():
  assert {k: gt.cell_to_id(g.cell) for k, g in published.PUBLISHED.items()} == {
      "nasdip_denoise": 158, "nasdip_inpaint": 86, "nasdip_sr": 119}
  # each published table is a shared level-difference pattern (index = source - stage + 4)
  pattern = lambda name: gt.to_pattern(published.PUBLISHED[name])
  assert pattern("nasdip_denoise") == (0, 0, 0, 0, 1, 1, 1, 1, 1)  # every coarse-to-fine one
  assert pattern("nasdip_inpaint") == (0, 0, 1, 0, 1, 1, 0, 0, 0)  # down 2, same, up 1
  assert pattern("nasdip_sr") == (0, 0, 0, 1, 1, 0, 0, 1, 0)       # down 1, same, up 3
  assert gt.to_pattern(gt.Genotype(gt.cell_from_id(0), ((1, 0, 0, 0, 0),) + ((0,) * 5,) * 4)) is None
  sr = published.PUBLISHED["nasdip_sr"].connections
  assert sr[1] == (1, 1, 0, 0, 1)  # D1 (H/2): z down 1, enc1, enc4 up 3


def test_shared_patterns_round_trip():
  cell = gt.cell_from_id(5)
  tables = set()
  for p in range(2 ** 9):
    bits = tuple((p >> i) & 1 for i in range(9))
    g = gt.from_pattern(cell, bits)
    assert gt.to_pattern(g) == bits
    tables.add(g.connections)
  assert len(tables) == 512


def test_sample_is_buildable_deterministic_and_spread():
  keys = jax.random.split(jax.random.key(0), 200)
  samples = [gt.sample(k) for k in keys]
  assert all(gt.is_valid(g) for g in samples)
  assert gt.sample(keys[0]) == samples[0]
  assert len({g.cell for g in samples}) > 100
  ext = gt.sample(keys[1], gt.Space.extended())
  assert gt.is_valid(ext)
  hash(ext)


def test_mutate_stays_buildable():
  g = published.PUBLISHED["nasdip_sr"]
  for k in jax.random.split(jax.random.key(1), 50):
    m = gt.mutate(k, g, rate=0.3)
    assert gt.is_valid(m)
  assert gt.mutate(jax.random.key(2), g, rate=0.0) == g
