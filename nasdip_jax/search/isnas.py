"""ISNAS-DIP (Arican et al., CVPR 2022): score untrained candidates by PSD metrics of their random
outputs against the corrupted image, train the top N, and pick the one closest to the
metric-weighted average of their outputs.

Scoring follows ISNAS-DIP random_search.py: per candidate a fresh PyTorch-style init, input
0.1 U[0, 1) with the image's channels, batch-of-one BatchNorm statistics, the output compared
with the corrupted observation (SR: after the Lanczos-2 operator, against the LR image).
`num_outputs` > 1 averages each metric over that many input noises of one init (the NAS-dataset
analysis used 100). One compiled program of the outputs serves every genotype (the dynamic
network), task, image and metric list of a shape.
"""

from concurrent import futures
import functools
import itertools
import threading
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.imaging import metrics
from nasdip_jax.nets import dynamic
from nasdip_jax.nets import layers
from nasdip_jax.search import hash_prng
from nasdip_jax.search import psd_metrics

INIT_PRNGS = (hash_prng.NAME, "threefry2x32", "philox4x32")
CHAINS = ("used", "all")


def make_scorer(spec: degrade.OperatorSpec, observation, image_hw, width: int,
                metric_names: Sequence[str], num_outputs: int = 1, num_inits: int = 1,
                init_prng: str = hash_prng.NAME, devices=None, chains: str = "used"):
  """A `score(key, code) -> (len(metric_names),)` of one candidate's random output(s): each
  metric averaged over num_inits initialisations x num_outputs input noises (the reference:
  1 x 1 in the search, 1 x 100 in the NAS-dataset analysis), computed one by one. The networks
  are drawn with `init_prng` (one of INIT_PRNGS; 'hash32' is ~40x faster than JAX's default
  threefry on CPU), from init keys of the same key data as the threefry keys split from `key`.
  `chains`: 'used' runs only the upward chains the candidate's connections use (1.13x at 64 px
  on CPU), 'all' every chain on one batch per level (the training network's way); the outputs
  are equal.
  Successive calls go round `devices` (default: the first local device), so candidates run
  concurrently, one per device; scores do not depend on the device. Calls are thread-safe:
  `score_all` keeps several candidates in flight per device (on CPU, two threads on one device
  score as fast as two CPU devices and compile once instead of twice).

  Jitted programs: one random output (shared by every scorer of the image's shape and width,
  whatever its task, image, metrics and counts: a resumed search does not recompile), the keys
  and noises, and the metrics."""
  psd_metrics.check_size(metric_names, *observation.shape[-3:-1])
  if init_prng not in INIT_PRNGS:
    raise ValueError(f"init_prng must be one of {INIT_PRNGS}, got {init_prng!r}")
  if chains not in CHAINS:
    raise ValueError(f"chains must be one of {CHAINS}, got {chains!r}")
  c = observation.shape[-1]
  draw = _draws_program(tuple(image_hw), c, num_outputs, num_inits, init_prng)
  output = _output_program(width, chains)
  measure = _metrics_program(spec, tuple(metric_names))
  devices = tuple(devices or jax.local_devices()[:1])
  observations = [jax.device_put(jnp.asarray(observation), d) for d in devices]
  calls, compiled = itertools.count(), threading.Event()

  def on_device(d, key, code):
    key, code = jax.device_put((key, code), devices[d])
    init_keys, zs, random_key = draw(key)
    outs = [output(init_keys[i], z, code) for i in range(num_inits) for z in zs[i]]
    return measure(observations[d], outs, random_key)

  def score(key, code):
    call = next(calls)
    if call > 0:
      compiled.wait()  # concurrent calls wait for the first, which compiles
      return on_device(call % len(devices), key, code)
    try:
      if len(devices) == 1:
        return on_device(0, key, code)
      first = _in_callers_context(lambda d: jax.block_until_ready(on_device(d, key, code)))
      with futures.ThreadPoolExecutor(len(devices)) as pool:  # every device compiles at once
        return list(pool.map(first, range(len(devices))))[0]
    finally:
      compiled.set()

  return score


def score_all(score, keys, codes, threads: int = 1) -> list:
  """[np.ndarray] of `score(keys[i], codes[i])` for every i, `threads` candidates in flight at
  once, each thread waiting for its own (a CPU device runs a call in the thread that waits for
  it; one 64-px candidate keeps ~1.7 of 2 cores busy, two threads ~1.1x faster; the scorer's
  first call compiles while the others wait). threads=1: dispatched one after another, results
  fetched at the end (the devices' queues overlap)."""
  if threads == 1:
    return jax.device_get([score(k, c) for k, c in zip(keys, codes)])
  one = _in_callers_context(lambda i: jax.device_get(score(keys[i], codes[i])))
  with futures.ThreadPoolExecutor(threads) as pool:
    return list(pool.map(one, range(len(codes))))


def _in_callers_context(fn):
  """fn for a worker thread, run with the caller's default matmul precision (a thread-local
  setting, part of jit's cache key: without it every thread would compile its own programs)."""
  precision = jax.config.jax_default_matmul_precision

  def run(*args):
    with jax.default_matmul_precision(precision):
      return fn(*args)
  return run


@functools.lru_cache(maxsize=8)
def _draws_program(image_hw, c, num_outputs, num_inits, init_prng):
  """`draw(key) -> (init keys, input noises, metrics key)`: num_inits keys (of init_prng), per
  init a tuple of num_outputs noises (1, h, w, c) of 0.1 U[0, 1) from the i-th split of the
  key's noise half, and the key of the random baseline metric. Separate outputs, so the caller
  slices nothing."""
  h, w = image_hw
  impl = hash_prng.IMPL if init_prng == hash_prng.NAME else init_prng

  @jax.jit
  def draw(key):
    init_key, z_key, random_key = jax.random.split(key, 3)
    z = jax.vmap(lambda k: 0.1 * jax.random.uniform(k, (num_outputs, 1, h, w, c)))(
        jax.random.split(z_key, num_inits))
    zs = tuple(tuple(z[i, j] for j in range(num_outputs)) for i in range(num_inits))
    init_keys = jax.random.wrap_key_data(
        jax.random.key_data(jax.random.split(init_key, num_inits)), impl=impl)
    return tuple(init_keys), zs, random_key

  return draw


@functools.lru_cache(maxsize=8)
def _output_program(width, chains="used"):
  """`output(init_key, z, code) -> (1, h, w, c)`: the network drawn from init_key (fixed
  modules from its first split, cells from its second, at their own kernel sizes where they are
  used) applied to z, a batch of one; `chains` as make_scorer's. Its layers are `forward_only`
  (nothing differentiates them: on CPU its fixed modules' 3x3 layers from 32x32 run by
  Winograd)."""

  @jax.jit
  def output(init_key, z, code):
    fixed_key, cells_key = jax.random.split(init_key)
    c = z.shape[-1]
    net = layers.specialise(
        dynamic.DynamicNasDipNet(c, c, width=width, rngs=nnx.Rngs(params=fixed_key)),
        forward_only=True)
    return net.fresh_cells_forward(z, code, cells_key, chains)

  return output


@functools.lru_cache(maxsize=8)
def _metrics_program(spec, metric_names):
  """`measure(observation, outputs, random_key) -> (len(metric_names),)`: the list of outputs
  (1, h, w, c) through the task's operator for SR, each metric's mean over them."""

  @jax.jit
  def measure(observation, outs, random_key):
    outs = jnp.concatenate(outs)
    if spec.task == "sr":
      outs = spec.apply(outs, None)
    return jnp.stack([jnp.mean(psd_metrics.metric(name, observation, outs, key=random_key))
                      for name in metric_names])

  return measure


def averaging_weights(values) -> np.ndarray:
  """ISNAS-DIP's weights (max - m) / (max - min): the best (lowest) metric 1, the worst 0.
  Equal values (the reference divides by zero) give equal weights."""
  values = np.asarray(values, np.float64)
  span = values.max() - values.min()
  if span == 0:
    return np.ones_like(values)
  return (values.max() - values) / span


def closest_to_average(outputs, values, y_channel: bool = False):
  """ISNAS-DIP's selection: (index, PSNRs to the average, the weighted average).

  outputs (N, H, W, C): the cohort's final (EMA) outputs; values (N,): their metric values. The
  weighted average uses `averaging_weights`; the selected member has the highest PSNR to it (on
  the BT.601 Y channel for RGB super-resolution, as the reference).
  """
  outputs = np.asarray(outputs, np.float32)
  w = averaging_weights(values)
  average = np.tensordot(w / w.sum(), outputs.astype(np.float64), axes=1).astype(np.float32)
  ref, est = average, outputs
  if y_channel:
    ref, est = metrics.rgb_to_y(jnp.asarray(average)), metrics.rgb_to_y(jnp.asarray(outputs))
  psnrs = np.asarray(metrics.psnr(ref, est), np.float64)
  return int(np.argmax(psnrs)), psnrs, average


def resize_short_side(img, short: int = 64, multiple: int = 32) -> np.ndarray:
  """ISNAS-DIP's `--small` resize of a float [0, 1] (H, W, C) image: to uint8 by truncation,
  Pillow bicubic to short side `short` (the other side scaled and truncated), back to float;
  then centre-cropped to a multiple of `multiple` so the network can run it."""
  img = np.asarray(img, np.float64)
  u8 = np.clip(img * 255.0, 0, 255).astype(np.uint8)  # truncating, as the reference
  h, w = u8.shape[:2]
  size = (short, int(w * short / h)) if h <= w else (int(h * short / w), short)
  pil = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
  out = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BICUBIC), np.uint8)
  out = out.reshape(out.shape[0], out.shape[1], -1)
  return image_io.crop_to_multiple(out, multiple).astype(np.float32) / 255.0


def resized_problem(problem: degrade.Problem, short: int = 64) -> degrade.Problem:
  """The training problem of 'resized averaging': clean, observation and mask each resized
  (the inpainting mask becomes non-binary, as in the reference)."""
  r = lambda a: resize_short_side(a[0], short)[None]
  return degrade.Problem(r(problem.observation), r(problem.clean), r(problem.mask))
