"""A fast JAX PRNG for drawing untrained networks: 'hash32'.

Training-free scoring draws a fresh network per candidate, millions of uniforms each. On CPU,
JAX's default threefry2x32 produces them at ~11 ns per number (2-core AVX-512 machine, jax
0.10.2): with its 'partitionable' counters, more than the forward pass of a 64-px candidate.
'hash32' keeps threefry for keys (seed, split and fold_in are threefry's, so keys and key trees
are as independent as JAX's) and draws bits by hashing each element's index with the key:
two rounds of the lowbias32 integer hash (C. Wellons' hash prospector), key words mixed in
before each: 16 vectorised integer operations per number, ~0.25 ns.

It is a statistical generator for initialisations, not a cryptographic or splittable-by-bits
one; tests check uniformity, bit balance and independence across keys and neighbouring
elements. Use it through its name: `jax.random.key(seed, impl=hash_prng.IMPL)`, or convert a
key of another impl with `from_key`.
"""

import math

import jax
import jax.extend.random
import numpy as np
from jax import lax

NAME = "hash32"
_THREEFRY = "threefry2x32"


def _lowbias32(x):
  x = x ^ (x >> 16)
  x = x * np.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * np.uint32(0x846CA68B)
  return x ^ (x >> 16)


def _threefry(key_data):
  return jax.random.wrap_key_data(key_data, impl=_THREEFRY)


def _seed(seed):
  return jax.random.key_data(jax.random.key(seed, impl=_THREEFRY))


def _split(key_data, shape):
  return jax.random.key_data(jax.random.split(_threefry(key_data), shape))


def _fold_in(key_data, data):
  return jax.random.key_data(jax.random.fold_in(_threefry(key_data), data))


def _random_bits(key_data, bit_width, shape):
  words = math.prod(shape) * (2 if bit_width == 64 else 1)
  if words >= 2 ** 32:
    raise NotImplementedError(f"{NAME} draws fewer than 2**32 words at once, asked {words}")
  index = lax.iota(np.uint32, words)
  bits = _lowbias32(_lowbias32(index ^ key_data[0]) ^ key_data[1])
  if bit_width == 64:
    pairs = bits.reshape(-1, 2).astype(np.uint64)
    return ((pairs[:, 0] << np.uint64(32)) | pairs[:, 1]).reshape(shape)
  dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bit_width]
  return bits.astype(dtype).reshape(shape)


IMPL = jax.extend.random.define_prng_impl(
    key_shape=(2,), seed=_seed, split=_split, random_bits=_random_bits, fold_in=_fold_in,
    name=NAME, tag="h32")


def from_key(key):
  """The hash32 key with the same key data as a threefry2x32 key (or key array)."""
  return jax.random.wrap_key_data(jax.random.key_data(key), impl=IMPL)
