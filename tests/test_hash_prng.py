"""The scorer's 'hash32' PRNG: threefry's keys, and bits that pass basic statistical checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nasdip_jax.search import hash_prng

N = 200_000


def _key(seed):
  return jax.random.key(seed, impl=hash_prng.IMPL)


def test_keys_are_threefrys():
  tf = jax.random.key(7)
  key = hash_prng.from_key(tf)
  np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(tf))
  np.testing.assert_array_equal(jax.random.key_data(_key(7)), jax.random.key_data(tf))
  for got, want in ((jax.random.split(key, 5), jax.random.split(tf, 5)),
                    (jax.random.fold_in(key, 3), jax.random.fold_in(tf, 3))):
    np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(want))
  # and the bits differ from threefry's
  assert not np.array_equal(jax.random.bits(key, (64,)), jax.random.bits(tf, (64,)))


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_uniforms_are_uniform_and_bits_balanced(seed):
  key = _key(seed)
  u = np.asarray(jax.random.uniform(key, (N,)), np.float64)
  assert stats.kstest(u, "uniform").pvalue > 1e-4
  bits = np.asarray(jax.random.bits(key, (N,)), np.uint32)
  ones = np.stack([(bits >> b) & 1 for b in range(32)]).mean(axis=1)
  np.testing.assert_allclose(ones, 0.5, atol=5 * 0.5 / np.sqrt(N))
  byte = np.asarray(jax.random.bits(key, (N,), jnp.uint8))
  assert stats.chisquare(np.bincount(byte, minlength=256)).pvalue > 1e-4


def test_neighbours_and_sibling_keys_are_uncorrelated():
  bound = 5 / np.sqrt(N)
  keys = jax.random.split(_key(3), 4)
  draws = [np.asarray(jax.random.uniform(k, (N,)), np.float64) for k in keys]
  for a in draws:
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < bound
  for i in range(4):
    for j in range(i + 1, 4):
      assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < bound
  # keys one fold_in apart (the runs' per-candidate keys)
  a, b = (np.asarray(jax.random.uniform(jax.random.fold_in(_key(0), i), (N,))) for i in (1, 2))
  assert abs(np.corrcoef(a, b)[0, 1]) < bound


def test_normals_shapes_jit_and_vmap():
  z = np.asarray(jax.random.normal(_key(5), (400, 500)), np.float64)
  assert z.shape == (400, 500)
  assert abs(z.mean()) < 5 / np.sqrt(z.size) and abs(z.std() - 1) < 0.01
  keys = jax.random.split(_key(9), 3)
  eager = np.stack([jax.random.uniform(k, (7, 5)) for k in keys])
  np.testing.assert_array_equal(jax.jit(jax.vmap(lambda k: jax.random.uniform(k, (7, 5))))(keys),
                                eager)
