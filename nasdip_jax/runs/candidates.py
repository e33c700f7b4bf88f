"""The candidates of a training-free search and their scores, shared by the ISNAS run, the NAS
dataset and the RL search's prefilter: the config fields, their checks, the candidate list and
scoring with progress saved in the workdir (resumed by a rerun).
"""

import os
import time

import jax
import ml_collections
import numpy as np

from nasdip_jax import compilations
from nasdip_jax.errors import UserError
from nasdip_jax.imaging import io as image_io
from nasdip_jax.report import progress
from nasdip_jax.runs import common
from nasdip_jax.search import isnas
from nasdip_jax.search import psd_metrics
from nasdip_jax.space import codec
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import lists

SCORE_SAVE_EVERY = 200      # scores.npz is saved after this many new candidates ...
SCORE_SAVE_SECONDS = 30.0   # ... or this long after the last save, whichever comes first
_clock = time.monotonic


def candidate_fields(c: ml_collections.ConfigDict) -> None:
  """The candidates, how they are scored, and the metrics tabulated and ranked by."""
  c.candidates = "isnas_candidates_5000"  # a shipped list (space/lists.py), or "sample"
  c.num_candidates = 5000         # the list's first N (unbuildable ones skipped) / N samples
  c.width = 128                   # channels of every NAS-DIP network
  c.num_outputs = 1               # random outputs per init (input noises) ...
  c.num_inits = 1                 # ... of this many inits per candidate; metrics averaged
  c.init_prng = "hash32"          # the candidates' init draws: hash32 | threefry2x32 | philox4x32
  c.score_devices = 0             # local devices scoring candidates concurrently (0 = all)
  c.score_threads = 0             # candidates in flight per scoring device (0 = 2 on CPU, else 1)
  c.cpu_devices = 0               # CPU devices main.py has JAX make (0 = JAX's default, one)
  c.table_metrics = (psd_metrics.SIMILARITY_METRICS + psd_metrics.LOWPASS_METRICS
                     + psd_metrics.CORRECTED_METRICS + (psd_metrics.RANDOM_METRIC,))
  c.rank_by = psd_metrics.ISNAS_METRICS + (psd_metrics.RANDOM_METRIC,)


def check_candidates(config) -> None:
  if config.candidates != "sample" and config.candidates not in lists.FILES:
    raise UserError(f"config.candidates must be 'sample' or one of {sorted(lists.FILES)}")
  common.check_metrics(tuple(config.table_metrics) + tuple(config.rank_by))
  missing = [m for m in config.rank_by if m not in config.table_metrics]
  if missing:
    raise UserError(f"config.rank_by metrics {missing} are not in config.table_metrics")
  common.check_at_least(config, ["num_candidates", "num_outputs", "num_inits", "width"])
  common.check_choice(config, "init_prng", isnas.INIT_PRNGS)
  score_devices(config)
  common.check_at_least(config, ["score_threads"], 0)


def score_devices(config) -> list:
  """The local devices that score candidates (config.score_devices of them; 0 = all)."""
  devices = jax.local_devices()
  if not 0 <= config.score_devices <= len(devices):
    raise UserError(f"config.score_devices must be in 0..{len(devices)} (the local devices), "
                    f"got {config.score_devices}")
  return devices[:config.score_devices or len(devices)]


def score_threads(config, devices) -> int:
  """Candidates scored at once: config.score_threads per device (0: two on CPU, where two
  concurrent candidates fill the cores better than one, and one elsewhere)."""
  per_device = config.score_threads or (2 if devices[0].platform == "cpu" else 1)
  return per_device * len(devices)


def candidate_genotypes(config):
  """(names, genotypes) of the buildable candidates and the number skipped as unbuildable."""
  space = gt.Space.reference(config.width)
  if config.candidates == "sample":
    keys = jax.random.split(jax.random.key(config.seed), config.num_candidates)
    genos = [gt.sample(k, space) for k in keys]
    return [gt.to_name(g) for g in genos], genos, 0
  names, genos, skipped = [], [], 0
  for name in lists.names(config.candidates)[:config.num_candidates]:
    g = gt.from_name(name)
    if not gt.is_valid(g, config.width):
      skipped += 1  # the reference logs these to ERRORS.txt and moves on
      continue
    names.append(gt.to_name(g))
    genos.append(g)
  return names, genos, skipped


def score(config, spec, problem, genotypes, workdir) -> tuple:
  """(values (N, M), timing) of every candidate; progress saved in scores.npz (after the first
  candidate, then every SCORE_SAVE_EVERY candidates or SCORE_SAVE_SECONDS, and at the end),
  resumed by a rerun.

  timing: `seconds` of this call, `first_call_seconds` (the first candidate scored here, with
  the programs' compilation), `compilations` (programs compiled here), `devices`, `threads`
  (candidates in flight), `scored` (candidates scored here) and `candidates_per_sec` after the
  first call (None below two)."""
  path = os.path.join(workdir, "scores.npz")
  n, metrics_ = len(genotypes), list(config.table_metrics)
  values = np.full((n, len(metrics_)), np.nan)
  done = 0
  if os.path.exists(path):
    with np.load(path) as z:
      if list(z["metrics"]) == metrics_ and z["values"].shape[0] == n:
        values, done = z["values"], int(z["done"])
  h, w = problem.clean.shape[1:3]
  devices = score_devices(config)
  threads = score_threads(config, devices)
  scorer = isnas.make_scorer(spec, problem.observation, (h, w), config.width, metrics_,
                             config.num_outputs, config.num_inits, config.init_prng, devices)
  base = jax.random.key(config.seed)
  t0 = time.perf_counter()
  if done < n:
    progress.say(f"scoring {n - done} of {n} candidates at width {config.width} on a {w}x{h} "
                 f"image ({len(devices)} device(s), {threads} in flight); compiling first...")
  bar = progress.Progress(n, "scoring", "candidate", initial=done)
  start, first_seconds = done, 0.0
  # the first candidate alone (its compilation, timed apart), then batches of twice the
  # candidates in flight (each thread has a next one queued)
  batch = 2 * threads
  batches = [(lo, min(lo + batch, n)) for lo in range(done + 1, n, batch)]
  saved, saved_at = done, _clock()
  with compilations.counting() as compiled:
    for lo, hi in ([(done, done + 1)] if done < n else []) + batches:
      keys = [jax.random.fold_in(base, i) for i in range(lo, hi)]
      codes = [codec.encode(g, config.width) for g in genotypes[lo:hi]]
      values[lo:hi] = isnas.score_all(scorer, keys, codes, threads)
      if lo == start:
        first_seconds = time.perf_counter() - t0
      done = hi
      if (lo == start or done == n or done - saved >= SCORE_SAVE_EVERY
          or _clock() - saved_at >= SCORE_SAVE_SECONDS):
        image_io.atomic_write(path, lambda f, d=done: np.savez(
            f, values=values, done=d, metrics=np.array(metrics_)))
        saved, saved_at = done, _clock()
      bar.update(done)
  bar.close()
  seconds, scored = time.perf_counter() - t0, n - start
  return values, {"seconds": seconds, "first_call_seconds": first_seconds,
                  "compilations": compiled.n, "devices": len(devices),
                  "threads": threads, "scored": scored, "candidates_per_sec":
                      (scored - 1) / (seconds - first_seconds) if scored > 1 else None}
