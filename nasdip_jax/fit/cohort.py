"""Train N DIP candidates as one cohort: N seeds of one network, one network over N images of one
size, or N genotypes of the dynamic network. Member i gets exactly the fit that a single run with
key `keys[i]` on `problems[i]` gets: its own initialisation, z, input noise, Adam state, EMA,
oracle-best tracking and PSNR curve.

    recipe = cohort.Recipe(build, spec, fit_cfg)      # build(key, code) -> nnx.Module
    result = cohort.train(recipe, cohort.make_members(keys, problem), num_steps)
    result.curves["psnr"]                               # (N, num_steps)

Executions (same members, same results within float tolerance):
- 'vmap': one jitted step vmapped over the member axis, which is sharded over a device mesh
  (`NamedSharding(mesh, P('members'))`; members never communicate). Different dynamic genotypes
  become selects there: every cell kind is computed.
- 'shard_map': each device runs its own block of members; with one member per device a dynamic
  genotype's `switch` stays a real conditional, so a device computes only its own cells.
- 'loop': one single-member program, run for each member in turn. On CPU this is the fastest:
  XLA:CPU already spreads one network over all cores, and vmapped convolutions are slower there.
'auto' is 'loop' on CPU and 'vmap' elsewhere. Multi-host: call `jax.distributed.initialize()`
first (`python -m nasdip_jax.main --distributed`); the mesh then spans every host's devices.

Members are trained in chunks that fit the device memory (measured on the compiled step), all
sharing one compiled program. With a workdir, each finished chunk's results are written
atomically and the running chunk is checkpointed, so a killed run resumes without losing work.
"""

import collections
import concurrent.futures
import dataclasses
import glob
import hashlib
import json
import math
import os
import shutil
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from nasdip_jax.errors import UserError
from nasdip_jax.fit import checkpoints
from nasdip_jax.fit import dip
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import io as image_io
from nasdip_jax.nets import layers

AXIS = "members"
EXECUTIONS = ("auto", "vmap", "shard_map", "loop")
RESULT_FIELDS = ("final", "best", "best_psnr", "best_step", "num_fallbacks")


class Members(NamedTuple):
  """N candidates; leaves have a leading member axis."""
  keys: jax.Array            # (N,) typed PRNG keys: initialisation, z and input noise
  problems: degrade.Problem  # (N, 1, H, W, C) leaves
  codes: Any = None          # (N, ...) GenotypeCode of a dynamic network, else None


def make_members(keys, problems, codes=None) -> Members:
  """Members from N keys and one problem (shared) or N problems of one size, plus N codes."""
  keys = jnp.asarray(keys)
  n = keys.shape[0]
  if isinstance(problems, degrade.Problem):
    problems = [problems] * n
  if len(problems) != n:
    raise ValueError(f"{n} keys but {len(problems)} problems")
  shapes = {p.observation.shape for p in problems}
  if len(shapes) != 1:
    raise UserError(f"a cohort's images must have one size; got {sorted(shapes)}")
  stacked = jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *problems)
  if codes is not None and jax.tree.leaves(codes)[0].shape[0] != n:
    raise ValueError(f"{n} keys but {jax.tree.leaves(codes)[0].shape[0]} codes")
  return Members(keys, stacked, codes)


def seed_keys(seed: int, n: int) -> jax.Array:
  """Keys of seeds seed, seed + 1, ...: member i is the single run with seed + i."""
  return jnp.stack([jax.random.key(seed + i) for i in range(n)])


def num_members(members: Members) -> int:
  return int(members.keys.shape[0])


@dataclasses.dataclass(frozen=True)
class Recipe:
  """What every member shares: `build(key, code)` makes its network (pure: the parameters
  depend only on the key; code is None for a static network), the operator and the fit config."""
  build: Callable[[jax.Array, Any], nnx.Module]
  spec: degrade.OperatorSpec
  cfg: dip.FitConfig


@dataclasses.dataclass
class CohortResult:
  """Per-member results (numpy, leading axis N) and how the cohort ran."""
  curves: dict          # name -> (N, steps), names dip.metric_names(cfg)
  final: np.ndarray     # (N, H, W, C) last shown image (the EMA when on)
  best: np.ndarray      # (N, H, W, C) oracle-best shown image
  best_psnr: np.ndarray
  best_step: np.ndarray
  num_fallbacks: np.ndarray
  info: dict
  stop_step: Optional[np.ndarray] = None   # ES-WMV (cfg.stop): the step of the answer
  stop_image: Optional[np.ndarray] = None  # (N, H, W, C) the shown image at that step


def resolve_execution(execution: str) -> str:
  if execution not in EXECUTIONS:
    raise UserError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
  if execution == "auto":
    return "loop" if jax.default_backend() == "cpu" else "vmap"
  return execution


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D mesh named 'members' over the first num_devices devices (0 = all, every host's).

  Auto axes: with JAX's default Explicit axes a vmapped convolution fails to shard.
  """
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise UserError(f"num_devices must be in 0..{len(devices)}, got {num_devices}")
  devices = devices[:num_devices or len(devices)]
  return jax.sharding.Mesh(np.array(devices), (AXIS,),
                           axis_types=(jax.sharding.AxisType.Auto,))


def free_memory_bytes(num_devices: int = 1) -> int:
  """Free memory of one local device while `num_devices` of them run: on CPU, where devices
  share the RAM, the available RAM divided by num_devices."""
  device = jax.local_devices()[0]
  stats = device.memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  ram = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  return ram // max(1, num_devices)


def _init_member(recipe: Recipe, tx, key, problem, code):
  init_key, data_key = jax.random.split(key)
  params = nnx.state(recipe.build(init_key, code), nnx.Param)
  data = dip.init_data(data_key, problem, recipe.cfg, code)
  return dip.init_state(params, tx, problem, recipe.cfg), data


def _squeezed(step):
  """A per-member step applied to a block of one member (keeps a switch a real conditional)."""
  def run(state, data):
    one = jax.tree.map(lambda x: x[0], (state, data))
    return jax.tree.map(lambda x: x[None], step(*one))
  return run


class _Program:
  """The compiled init and fit of one chunk size."""

  def __init__(self, recipe, members, execution, mesh, size, steps_per_call, loop):
    self.size, self.batched = size, execution != "loop"
    # vmapped: members run as a batch on a device (XLA's grouped convolutions then: see
    # nets.cpu_conv.select); shard_map with one member per device runs each alone
    vmapped = self.batched and (execution == "vmap" or size > mesh.size)
    tx = dip.make_optimizer(recipe.cfg)
    code0 = None if members.codes is None else jax.tree.map(lambda x: x[0], members.codes)
    graphdef = nnx.graphdef(layers.specialise(
        nnx.eval_shape(lambda: recipe.build(jax.random.key(0), code0)), member_batched=vmapped))
    step = dip.make_step_fn(graphdef, tx, recipe.spec, recipe.cfg)
    init = lambda k, p, c: _init_member(recipe, tx, jax.random.wrap_key_data(k), p, c)
    if self.batched:
      sharding = NamedSharding(mesh, P(AXIS))
      self._init = jax.jit(jax.vmap(init), out_shardings=sharding)
      if execution == "vmap":
        step = jax.vmap(step)
      else:
        step = jax.shard_map(jax.vmap(step) if vmapped else _squeezed(step), mesh=mesh,
                             in_specs=P(AXIS), out_specs=P(AXIS))
      place = lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding)
    else:
      self._init = jax.jit(init)
      place = lambda s: s
    example = self._inputs(members, np.zeros(size if self.batched else (), np.int64))
    state, data = jax.tree.map(place, jax.eval_shape(self._init, *example))
    t0 = time.perf_counter()
    lowered = self._init.lower(*example)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      init = pool.submit(lowered.compile)  # ahead of time, beside the fit's compilation
      self.compiled = dip.compile_fit(step, state, data, steps_per_call, loop)
      self._init = init.result()
    self.compiled.compile_seconds = time.perf_counter() - t0

  def _inputs(self, members, idx):
    codes = None if members.codes is None else jax.tree.map(
        lambda x: np.asarray(x)[idx], members.codes)
    key_data = np.asarray(jax.random.key_data(members.keys))
    return (key_data[idx], jax.tree.map(lambda x: x[idx], members.problems), codes)

  def init(self, members, idx):
    """State and data of members idx (padded to the chunk size by repeating the last one)."""
    idx = np.asarray(idx)
    if self.batched:
      idx = np.concatenate([idx, np.full(self.size - len(idx), idx[-1])])
    else:
      idx = idx[0]
    return self._init(*self._inputs(members, idx))


_PROGRAMS = collections.OrderedDict()  # recently compiled programs, reused by later train() calls
_MAX_PROGRAMS = 16


def _program(recipe, members, execution, mesh, size, steps_per_call, loop) -> _Program:
  """The compiled program for these settings and member shapes; a search calling train() once
  per batch of candidates with one Recipe compiles once."""
  shapes = jax.tree.map(lambda x: (np.shape(x)[1:], str(np.asarray(x).dtype)),
                        (members.problems, members.codes))
  key = (recipe, str(jax.tree.structure(shapes)), tuple(jax.tree.leaves(shapes)), execution,
         mesh, size, steps_per_call, loop)
  if key in _PROGRAMS:
    _PROGRAMS.move_to_end(key)
    _PROGRAMS[key].reused = True
    return _PROGRAMS[key]
  program = _Program(recipe, members, execution, mesh, size, steps_per_call, loop)
  program.reused = False
  _PROGRAMS[key] = program
  if len(_PROGRAMS) > _MAX_PROGRAMS:
    _PROGRAMS.popitem(last=False)
  return program


def _plan(recipe, members, execution, mesh, remaining, steps_per_call, loop, limit):
  """The largest chunk (a multiple of the device count) whose compiled step fits `limit` bytes
  per device, and its program; memory is measured on the compiled program, not guessed."""
  if execution == "loop":
    program = _program(recipe, members, execution, None, 1, steps_per_call, loop)
    mem = program.compiled.memory_bytes
    if mem is not None and mem > limit:
      raise UserError(f"one member needs about {mem / 2**20:.0f} MiB, more than the "
                      f"{limit / 2**20:.0f} MiB available; use a smaller image or network")
    return program
  d = mesh.size
  local = max(1, math.ceil(remaining / d))
  while True:
    program = _program(recipe, members, execution, mesh, local * d, steps_per_call, loop)
    mem = program.compiled.memory_bytes
    if mem is None or mem <= limit:
      break
    if local == 1:
      raise UserError(f"one member per device needs about {mem / 2**20:.0f} MiB, more than the "
                      f"{limit / 2**20:.0f} MiB available; use a smaller image or network")
    local = max(1, min(local - 1, int(local * limit / mem)))
  # equal chunks: 15 members under a limit of 14 run as 8 + 8, not 14 + 14 (13 of them padding)
  balanced = math.ceil(remaining / (d * math.ceil(remaining / (local * d))))
  if balanced < local:
    program = _program(recipe, members, execution, mesh, balanced * d, steps_per_call, loop)
  return program


def _fingerprint(recipe, members, num_steps) -> str:
  h = hashlib.sha1()
  h.update(repr((dataclasses.asdict(recipe.cfg), recipe.spec, num_steps)).encode())
  for leaf in jax.tree.leaves((jax.random.key_data(members.keys), members.problems,
                               members.codes)):
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()


class _Store:
  """Finished chunks as `members_<first>_<count>.npz` plus the running chunk's checkpoint.
  Multi-host: every host reads, process 0 writes (Orbax coordinates the checkpoint itself)."""

  def __init__(self, workdir, fingerprint):
    self.dir, self.writer = workdir, jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    meta = os.path.join(workdir, "cohort.json")
    if os.path.exists(meta):
      if json.load(open(meta, encoding="utf-8"))["fingerprint"] != fingerprint:
        raise UserError(f"{workdir} holds results of a different cohort; use a new workdir")
    elif self.writer:
      image_io.atomic_write(meta, lambda f: f.write(json.dumps(
          {"fingerprint": fingerprint}).encode()))

  def finished(self) -> dict:
    """member index -> (file results, row)."""
    done = {}
    for path in sorted(glob.glob(os.path.join(self.dir, "members_*.npz"))):
      with np.load(path) as z:
        chunk = {k: z[k] for k in z.files}
      for row, i in enumerate(chunk["indices"]):
        done[int(i)] = (chunk, row)
    return done

  def save(self, idx, results: dict) -> None:
    if not self.writer:
      return
    path = os.path.join(self.dir, f"members_{idx[0]:05d}_{len(idx)}.npz")
    image_io.atomic_write(path, lambda f: np.savez(f, indices=np.asarray(idx), **results))

  def running(self, idx):
    """The running chunk's checkpointer; a checkpoint of other members is discarded."""
    ckpt_dir, meta = os.path.join(self.dir, "running"), os.path.join(self.dir, "running.json")
    same = (os.path.exists(meta) and
            json.load(open(meta, encoding="utf-8"))["indices"] == [int(i) for i in idx])
    if not same and self.writer:
      shutil.rmtree(ckpt_dir, ignore_errors=True)
      image_io.atomic_write(meta, lambda f: f.write(json.dumps(
          {"indices": [int(i) for i in idx]}).encode()))
    return checkpoints.FitCheckpointer(ckpt_dir)

  def finish_running(self) -> None:
    if self.writer:
      shutil.rmtree(os.path.join(self.dir, "running"), ignore_errors=True)
      os.remove(os.path.join(self.dir, "running.json"))


def _chunk_results(state, curves, count: int, batched: bool) -> dict:
  pick = (lambda x: np.asarray(dip.to_host(x))[:count]) if batched else (lambda x: np.asarray(dip.to_host(x))[None])
  out = {"final": pick(state.shown)[:, 0], "best": pick(state.best_image)[:, 0],
         "best_psnr": pick(state.best_psnr), "best_step": pick(state.best_step),
         "num_fallbacks": pick(state.num_fallbacks)}
  if state.es is not None:
    out.update(stop_step=pick(state.es.step), stop_image=pick(state.es.image)[:, 0])
  for k in curves:
    out["curve_" + k] = (curves[k][:count] if batched else curves[k][None]).astype(np.float32)
  return out


def train(recipe: Recipe, members: Members, num_steps: int, *, execution: str = "auto",
          mesh: Optional[jax.sharding.Mesh] = None, steps_per_call: int = 50,
          loop: str = "auto", memory_limit_bytes: int = 0, workdir: Optional[str] = None,
          checkpoint_every: int = 0,
          on_chunk: Optional[Callable[[Sequence[int], dict], None]] = None) -> CohortResult:
  """Fits every member for num_steps and returns their results in member order.

  memory_limit_bytes: per device (0 = the free memory). workdir: where finished chunks and the
  running chunk's checkpoint (every checkpoint_every steps, 0 = only finished chunks) go; a rerun
  with the same workdir and members resumes. on_chunk(member indices, curves so far) follows
  every call of steps_per_call steps.
  """
  t0 = time.perf_counter()
  execution = resolve_execution(execution)
  n = num_members(members)
  if execution != "loop" and mesh is None:
    mesh = make_mesh()
  store = _Store(workdir, _fingerprint(recipe, members, num_steps)) if workdir else None
  done = store.finished() if store else {}
  remaining = [i for i in range(n) if i not in done]
  info = {"execution": execution, "members": n, "devices": 1 if mesh is None else mesh.size,
          "resumed_members": n - len(remaining), "compile_seconds": 0.0, "memory_bytes": None,
          "chunk_members": 0, "num_chunks": 0}
  rows = {i: {k: v[r] for k, v in chunk.items() if k != "indices"}
          for i, (chunk, r) in done.items()}
  if remaining:
    limit = memory_limit_bytes or free_memory_bytes(info["devices"])
    program = _plan(recipe, members, execution, mesh, len(remaining), steps_per_call, loop,
                    limit)
    size = program.size if program.batched else 1
    info.update(compile_seconds=0.0 if program.reused else program.compiled.compile_seconds,
                memory_bytes=program.compiled.memory_bytes, chunk_members=size)
    t_fit = time.perf_counter()
    for start in range(0, len(remaining), size):
      idx = remaining[start:start + size]
      state, data = program.init(members, idx)
      history = None
      checkpointer = store.running(idx) if store and checkpoint_every else None
      if checkpointer is not None and checkpointer.latest_step():
        state, history = checkpointer.restore(state, dip.metric_names(recipe.cfg))
      saved = {"at": 0 if history is None else history["loss"].shape[-1]}

      def on_steps(st, curves, idx=idx, checkpointer=checkpointer, saved=saved):
        steps = curves["loss"].shape[-1]
        if on_chunk is not None:
          on_chunk(idx, {k: (v if program.batched else v[None])[:len(idx)]
                         for k, v in curves.items()})
        if checkpointer is not None and steps < num_steps and (
            steps // checkpoint_every > saved["at"] // checkpoint_every):
          checkpointer.save(st, curves)
          saved["at"] = steps

      state, curves = dip.fit(program.compiled, state, data, num_steps, steps_per_call,
                              on_steps, history)
      results = _chunk_results(state, curves, len(idx), program.batched)
      if store:
        store.save(idx, results)
        if checkpointer is not None:
          checkpointer.close()
          store.finish_running()
      for row, i in enumerate(idx):
        rows[i] = {k: v[row] for k, v in results.items()}
      info["num_chunks"] += 1
    info["fit_seconds"] = time.perf_counter() - t_fit
    info["member_steps_per_sec"] = len(remaining) * num_steps / info["fit_seconds"]
  info["wall_seconds"] = time.perf_counter() - t0
  stacked = {k: np.stack([rows[i][k] for i in range(n)]) for k in rows[0]}
  return CohortResult(
      curves={k[len("curve_"):]: v for k, v in stacked.items() if k.startswith("curve_")},
      **{k: stacked[k] for k in RESULT_FIELDS},
      **{k: stacked.get(k) for k in ("stop_step", "stop_image")}, info=info)
