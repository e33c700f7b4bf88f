"""Test-wide JAX settings (set once, before any backend exists) and shared fixtures."""

import os
import sys

import jax

from nasdip_jax import hostmem

# Eight simulated CPU devices for the sharding tests. No persistent compilation cache: on a cold
# cache, serialising one of the suite's late executables segfaulted inside XLA (twice, in
# tests/test_skip.py after the whole suite; not alone). Programs are shared within the run
# through fixtures and fit.cohort's program cache instead.
jax.config.update("jax_num_cpu_devices", 8)

TESTS_DIR = os.path.dirname(__file__)
TESTDATA = os.path.join(TESTS_DIR, "testdata")
REPO = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)
# As main.py: XLA:CPU's per-call buffers reused instead of mapped (and page-faulted) anew.
hostmem.keep_freed_memory()
# Small programs compile ~40% faster unoptimised; the suite's numerics are unaffected.
jax.config.update("jax_disable_most_optimizations", True)

import pytest  # pylint: disable=wrong-import-position,wrong-import-order

# Tests that run the ISNAS scorer's and the dynamic cohort's programs at the same shapes (the tiny
# ISNAS and RL runs, the scores check, tests/test_cohort.py's dynamic cohort): under
# `--dist loadgroup` they share one worker, which compiles them once.
DYNAMIC_PROGRAM = pytest.mark.xdist_group("dynamic_program")

# The heaviest groups (seconds on 2 cores, measured 2026-12-03), scheduled first: xdist hands
# groups to the workers in collection order, so a long group collected last would leave one
# worker idle at the end (longest first balances the two).
HEAVIEST_FIRST = ("dynamic_program", "tests.test_configs_and_cli", "tests.test_dynamic",
                  "tests.test_isnas", "tests.test_cohort", "tests.test_fit",
                  "tests.test_inverse_problems", "tests.test_conv_impls", "tests.test_controller",
                  "tests.test_observed", "tests.test_nasdip_net", "tests.test_psd_metrics",
                  "tests.test_multihost", "tests.test_rl_search")


def _group(item) -> str:
  return item.get_closest_marker("xdist_group").args[0]


def pytest_collection_modifyitems(config, items):
  """For pytest-xdist's `--dist loadgroup` (the README's test command): every module without a
  group of its own runs on one worker, so its module fixtures are built once; the heaviest
  groups come first (a stable sort: each group keeps its order)."""
  del config
  for item in items:
    if item.get_closest_marker("xdist_group") is None:
      item.add_marker(pytest.mark.xdist_group(item.module.__name__))
  rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
  items.sort(key=lambda item: rank.get(_group(item), len(rank)))


def assert_strict_json(directory: str) -> int:
  """Parses every .json and .jsonl file under directory with a strict parser (NaN, Infinity
  and -Infinity refused); returns how many files it read."""
  import json  # pylint: disable=import-outside-toplevel

  def refuse(name):
    raise AssertionError(f"non-standard JSON constant {name}")

  count = 0
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      if name.endswith(".json"):
        json.loads(open(path, encoding="utf-8").read(), parse_constant=refuse)
      elif name.endswith(".jsonl"):
        for line in open(path, encoding="utf-8"):
          json.loads(line, parse_constant=refuse)
      else:
        continue
      count += 1
  return count


@pytest.fixture
def without_bm3d(monkeypatch):
  """`import bm3d` fails, as it does without the optional package."""
  import builtins  # pylint: disable=import-outside-toplevel
  real_import = builtins.__import__

  def no_bm3d(name, *args, **kwargs):
    if name == "bm3d":
      raise ImportError(name)
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_bm3d)
