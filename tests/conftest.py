"""Test-wide JAX settings (set once, before any backend exists) and shared fixtures."""

import os
import sys

import jax

# Eight simulated CPU devices for the sharding tests; a persistent compilation cache so that the
# few distinct programs the suite compiles are compiled once per machine, not once per test.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_compilation_cache_dir",
                  os.path.join(os.path.dirname(__file__), ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

TESTS_DIR = os.path.dirname(__file__)
TESTDATA = os.path.join(TESTS_DIR, "testdata")
REPO = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)
# Small programs compile ~40% faster unoptimised; the suite's numerics are unaffected.
jax.config.update("jax_disable_most_optimizations", True)
