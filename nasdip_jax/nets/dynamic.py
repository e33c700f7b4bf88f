"""Dynamic mode: any genotype of the space through one compiled program.

The genotype is an array (`space.codec.GenotypeCode`); each of the 9 cell positions holds one
flat parameter vector laid out for the cell's structural kind (interpolation -> T, pixel
shuffle -> T, T -> pixel shuffle, transposed-conv primitive; T the transform). Kernels are
stored 7x7 and masked to the genotype's k x k (exact, since cell convolutions zero-pad by
(k-1)/2), so kernel size and activation are data too. `lax.switch` over kinds and activations
runs only the selected computation; under `vmap` it becomes a select and every branch runs
(costlier, still one program). The interpolation kinds read one upsampling of the cell's input,
computed ahead of the switch (not one per kind: a fifth less to trace and compile for training).
The reference space, plus SELU; with `extended=True` also dilations 2 and 3 (a switch around
each dilatable convolution) and PReLU (two slopes at the end of each flat vector). Any width:
the kinds a width cannot build (`codec.buildable_kinds`; all build when width % 16 == 0) are
zeros branches, their genotypes refused by `codec.encode`.

Scoring untrained candidates needs no stored parameters: `fresh_cells_forward` draws each cell's
inside its kind's branch, at the kernel's own size (a switch over sizes), so only k x k work runs;
there, nearest upsampling followed by a convolution runs at the input's resolution
(`layers.nearest_up_conv`).
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasdip_jax.imaging import resample
from nasdip_jax.nets import cells
from nasdip_jax.nets import layers
from nasdip_jax.nets import nasdip
from nasdip_jax.space import codec
from nasdip_jax.space import genotype as gt

K = 7  # the largest kernel; every cell kernel is stored K x K
KINDS, INTERPS = codec.KINDS, codec.INTERPS
PRELU_INIT = 0.25


# ---------------------------------------------------------------- parameter layout

def _kind_branches(width, branch):
  """`branch(kind)` for each kind buildable at width, else a zeros cell (x -> (n, 2h, 2w,
  width)), whatever the branch's leading arguments."""
  def unbuildable(*args):
    n, h, w, _ = args[-1].shape
    return jnp.zeros((n, 2 * h, 2 * w, width), args[-1].dtype)
  return [branch(kind) if ok else unbuildable
          for kind, ok in zip(KINDS, codec.buildable_kinds(width))]


def _channels(kind, width):
  c_in = width // 4 if kind[0] == "ps_first" else width
  c_out = 4 * width if kind[0] == "t_first" else width
  return c_in, c_out


def kind_slots(kind, width):
  """[(name, shape, fan_in_per_kernel_pixel, kernel_axes)] of a kind; fan_in = value * k * k
  (or the value itself when kernel_axes is None)."""
  if kind[0] == "tconv_prim":
    return [("w", (width, width, K, K), width, (2, 3)), ("b", (width,), width, "bias")]
  c_in, c_out = _channels(kind, width)
  t = kind[1]
  if t == "conv":
    return [("w", (K, K, c_in, c_out), c_in, (0, 1))]
  if t == "trans_conv":
    return [("w", (c_in, c_out, K, K), c_out, (2, 3)), ("b", (c_out,), c_out, "bias")]
  if t == "split_stack_sum":
    return [("w", (K, K, c_in // 4, c_out), c_in // 4, (0, 1))]
  if t == "sep_conv":
    return [("dw", (K, K, 1, c_in), 1, (0, 1)), ("pw", (1, 1, c_in, c_out), c_in, None)]
  if t == "depth_wise_conv":
    return [("w", (K, K, 1, c_out), 1, (0, 1))]
  return []


@functools.lru_cache(maxsize=None)
def flat_size(width: int, extended: bool = False) -> int:
  """Floats per cell position: the largest kind's parameters (+ two PReLU slopes if extended)."""
  return max(sum(math.prod(s[1]) for s in kind_slots(k, width)) for k in KINDS) + 2 * extended


def _unpack(flat, kind, width):
  out, offset = {}, 0
  for name, shape, _, _ in kind_slots(kind, width):
    size = math.prod(shape)
    out[name] = jax.lax.dynamic_slice_in_dim(flat, offset, size).reshape(shape)
    offset += size
  return out


def _kernel_mask(k, axes, ndim):
  idx = jnp.abs(jnp.arange(K) - K // 2) <= k // 2
  m = (idx[:, None] & idx[None, :]).astype(jnp.float32)
  shape = [1] * ndim
  shape[axes[0]], shape[axes[1]] = K, K
  return m.reshape(shape)


def _draw(key, shape, fan, axes, kernel):
  """PyTorch's default init of a slot, U(+-1/sqrt(fan_in)): fan_in = fan * kernel^2 (a bias
  shares its weight's), or fan for a 1x1 weight; kernel may be traced."""
  fan_in = fan * jnp.square(kernel) if axes is not None else fan
  return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0) * jax.lax.rsqrt(
      jnp.asarray(fan_in, jnp.float32))


def _slot_keys(key, kind, width):
  """[(slot, key)] of a kind: what draw_kind_params and fresh_cell_forward draw each slot from."""
  slots = kind_slots(kind, width)
  return list(zip(slots, jax.random.split(key, max(len(slots), 1))))


def init_cell_params(key, code: codec.GenotypeCode, width: int, extended: bool = False):
  """(9, flat_size) parameters with PyTorch's default init for the code's cell, drawn only
  inside its k x k window (the unused tail is 0; PReLU slopes 0.25)."""
  size = flat_size(width)

  def init_kind(kind, key):
    parts = []
    for name, shape, fan, axes in kind_slots(kind, width):
      key, sub = jax.random.split(key)
      u = _draw(sub, shape, fan, axes, code.kernel)
      if isinstance(axes, tuple):
        u = u * _kernel_mask(code.kernel, axes, len(shape))
      parts.append(u.reshape(-1))
    flat = jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float32)
    return jnp.pad(flat, (0, size - flat.shape[0]))

  branches = [functools.partial(init_kind, kind) for kind in KINDS]
  keys = jax.random.split(key, nasdip.NUM_CELLS)
  # one switch over the kinds, vmapped over the positions' keys (the kind is not batched, so it
  # stays a conditional): traced and compiled once, not once per position
  flat = jax.vmap(lambda k: jax.lax.switch(code.kind, branches, k))(keys)
  if extended:
    flat = jnp.pad(flat, ((0, 0), (0, 2)), constant_values=PRELU_INIT)
  return flat


def embed_static_cell(module: cells.UpCell, width: int, extended: bool = False) -> np.ndarray:
  """The flat parameters of a static cell module (for equivalence tests and weight transfer)."""
  kind = codec.cell_kind(module.cell)
  tensors = []
  if module.prim is not None:
    tensors = [module.prim.kernel[...], module.prim.bias[...]]
  for op in module.transform.ops:
    tensors += ([op.kernel[...], op.bias[...]] if isinstance(op, cells.ConvTranspose)
                else [op.kernel[...]])
  flat = []
  for (_, shape, _, axes), t in zip(kind_slots(kind, width), tensors):
    t = np.asarray(t)
    if isinstance(axes, tuple) and t.shape != shape:
      pad = [(0, 0)] * t.ndim
      for a in axes:
        pad[a] = ((K - t.shape[a]) // 2, (K - t.shape[a]) // 2)
      t = np.pad(t, pad)
    assert t.shape == shape, (kind, t.shape, shape)
    flat.append(t.reshape(-1))
  flat = np.concatenate(flat) if flat else np.zeros((0,), np.float32)
  flat = np.pad(flat, (0, flat_size(width) - flat.shape[0])).astype(np.float32)
  if extended:
    slope = lambda act: float(act.slope[...][0]) if act.slope is not None else PRELU_INIT
    flat = np.concatenate([flat, [slope(module.act1), slope(module.act2)]]).astype(np.float32)
  return flat


# ---------------------------------------------------------------- forward

def _conv(x, w, groups=1, dilation=1, fast=False, nearest_up=False):
  """A zero-padded 'same' convolution (HWIO w); fast: `layers.same_conv` (scoring);
  nearest_up: of x nearest-upsampled x2 (`layers.nearest_up_conv`, fast only)."""
  if nearest_up:
    return layers.nearest_up_conv(x, w)
  if fast:
    return layers.same_conv(x, w, dilation, groups)
  pad = dilation * (w.shape[0] // 2)
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((pad, pad), (pad, pad)),
                                      rhs_dilation=(dilation, dilation),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=groups)


def _tconv(x, w_iohw, b, stride, dilation=1, fast=False, nearest_up=False):
  if fast and stride == 1:  # a 'same' convolution with the flipped kernel
    return _conv(x, jnp.flip(w_iohw, (2, 3)).transpose(2, 3, 0, 1), 1, dilation, fast,
                 nearest_up) + b
  return cells.conv_transpose(x, w_iohw, stride, dilation) + b


def _dilated(code, extended, fn):
  """fn(dilation) for the code's dilation: a switch over 1, 2, 3 in extended networks."""
  if not extended:
    return fn(1)
  return jax.lax.switch(code.dilation - 1, [functools.partial(fn, d) for d in gt.DILATIONS])


def _activation(code, x, slope):
  fns = [lambda v: v, jax.nn.relu, layers.leaky_relu, jax.nn.selu]
  if slope is not None:
    fns.append(lambda v: jnp.where(v >= 0, v, slope * v))
  return jax.lax.switch(code.act, fns, x)


NEAREST_PHASE_TRANSFORMS = ("conv", "trans_conv", "split_stack_sum")


def _transform(t, use, code, x, extended, fast, nearest_up=False):
  """Transform t of x; nearest_up (one of NEAREST_PHASE_TRANSFORMS, fast): of x
  nearest-upsampled x2, its convolution at x's resolution."""
  def conv(v, name, groups=1):
    return use(name, lambda w: _dilated(code, extended,
                                        lambda d: _conv(v, w, groups, d, fast, nearest_up)))
  if t == "conv":
    return conv(x, "w")
  if t == "trans_conv":
    b = use("b", lambda b: b)
    return use("w", lambda w: _dilated(code, extended,
                                       lambda d: _tconv(x, w, b, 1, d, fast, nearest_up)))
  if t == "split_stack_sum":
    return conv(cells.split_stack_sum(x), "w")
  if t == "sep_conv":
    dw = conv(x, "dw", groups=x.shape[-1])
    return use("pw", lambda pw: _conv(dw, pw, fast=fast))
  if t == "depth_wise_conv":
    return conv(x, "w", groups=x.shape[-1])
  return x


def _masked(flat, kind, width, code):
  """use(slot, fn) = fn(the slot's parameter from flat, kernels masked to the k x k window)."""
  p, axes = _unpack(flat, kind, width), {s[0]: s[3] for s in kind_slots(kind, width)}

  def use(name, fn):
    w = p[name]
    return fn(w * _kernel_mask(code.kernel, axes[name], w.ndim)
              if isinstance(axes[name], tuple) else w)
  return use


def _cell_kind_forward(kind, width, extended, flat, code, up, x):
  slopes = (flat[-2], flat[-1]) if extended else (None, None)
  return _kind_forward(kind, _masked(flat, kind, width, code), slopes, code, up, x, extended)


def _upsample(code, x):
  """x upsampled x2 by the code's interpolation: a switch over the modes."""
  return jax.lax.switch(code.interp, [functools.partial(resample.upsample2x, mode=m)
                                      for m in INTERPS], x)


INTERP_KINDS = np.array([kind[0] == "interp" for kind in KINDS])
NEAREST_PHASE_KINDS = INTERP_KINDS & np.array([kind[1] in NEAREST_PHASE_TRANSFORMS
                                               for kind in KINDS])


def _nearest_phase_applies(x, fast) -> bool:
  """Whether the fast path convolves x itself for nearest upsampling followed by one of
  NEAREST_PHASE_TRANSFORMS (on sides of at least layers.NEAREST_PHASE_MIN_SIDE)."""
  return fast and min(x.shape[1:3]) >= layers.NEAREST_PHASE_MIN_SIDE


def _shared_upsample(code, x, fast=False):
  """x upsampled by the code's interpolation where its cell uses that, else zeros: one
  conditional that every interpolation kind's branch reads (traced and differentiated once per
  cell, not once per kind)."""
  n, h, w, c = x.shape
  needed = jnp.asarray(INTERP_KINDS)[code.kind]
  if _nearest_phase_applies(x, fast):
    needed &= ~(jnp.asarray(NEAREST_PHASE_KINDS)[code.kind]
                & (code.interp == INTERPS.index("nearest")))
  return jax.lax.cond(needed, lambda v: _upsample(code, v),
                      lambda v: jnp.zeros((n, 2 * h, 2 * w, c), v.dtype), x)


def _kind_forward(kind, use, slopes, code, up, x, extended, fast=False):
  """A cell of one kind; use(slot, fn) applies fn to that slot's parameter (see _masked); up is
  `_shared_upsample(code, x, fast)`; fast convolutions for untrained networks (scoring)."""
  act1 = lambda v: _activation(code, v, slopes[0])
  act = lambda v: _activation(code, v, slopes[1])  # the second application has its own slope
  stage, t = kind
  if stage == "tconv_prim":
    b = use("b", lambda b: b)
    return act1(use("w", lambda w: _dilated(code, extended, lambda d: _tconv(x, w, b, 2, d))))
  if stage == "t_first":
    return act(cells.pixel_shuffle(act1(_transform(t, use, code, x, extended, fast))))
  if stage == "ps_first":
    y = _transform(t, use, code, act1(cells.pixel_shuffle(x)), extended, fast)
  elif t in NEAREST_PHASE_TRANSFORMS and _nearest_phase_applies(x, fast):
    # nearest: the convolution at x's resolution (act1 commutes with nearest upsampling)
    y = jax.lax.cond(
        code.interp == INTERPS.index("nearest"),
        lambda: _transform(t, use, code, act1(x), extended, fast, nearest_up=True),
        lambda: _transform(t, use, code, act1(up), extended, fast))
  else:
    y = _transform(t, use, code, act1(up), extended, fast)
  return y if t == "identity" else act(y)


def cell_forward(flat, code: codec.GenotypeCode, x, width: int, extended: bool = False):
  """One x2 cell of the code's kind, with flat parameters."""
  branches = _kind_branches(
      width, lambda kind: functools.partial(_cell_kind_forward, kind, width, extended))
  return jax.lax.switch(code.kind, branches, flat, code, _shared_upsample(code, x), x)


# ---------------------------------------------------------------- fresh cells (scoring)

def _window_shape(shape, axes, kernel):
  return tuple(kernel if i in axes else n for i, n in enumerate(shape))


def draw_kind_params(key, kind, kernel: int, width: int) -> dict:
  """What `fresh_cell_forward` draws for one kind with kernel x kernel kernels:
  {slot name: array}, slot i from `jax.random.split(key, number of slots)[i]`."""
  out = {}
  for (name, shape, fan, axes), sub in _slot_keys(key, kind, width):
    if isinstance(axes, tuple):
      shape = _window_shape(shape, axes, kernel)
    out[name] = _draw(sub, shape, fan, axes, kernel)
  return out


def embed_kind_params(params: dict, kind, width: int):
  """The flat vector (flat_size) of one kind's parameters, k x k kernels centred in K x K."""
  parts = []
  for name, _, _, axes in kind_slots(kind, width):
    t = params[name]
    if isinstance(axes, tuple):
      pad = [(0, 0)] * t.ndim
      for a in axes:
        pad[a] = ((K - t.shape[a]) // 2,) * 2
      t = jnp.pad(t, pad)
    parts.append(t.reshape(-1))
  flat = jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float32)
  return jnp.pad(flat, (0, flat_size(width) - flat.shape[0]))


def _fresh(key, kind, width, code):
  """use(slot, fn) with the slot's parameter drawn where it is used: a kernel through a switch
  over the kernel sizes (only the code's k x k draw and convolution run)."""
  by_name = {slot[0]: (slot, sub) for slot, sub in _slot_keys(key, kind, width)}

  def use(name, fn):
    (_, shape, fan, axes), sub = by_name[name]
    if not isinstance(axes, tuple):
      return fn(_draw(sub, shape, fan, axes, code.kernel))
    at = lambda k: lambda: fn(_draw(sub, _window_shape(shape, axes, k), fan, axes, k))
    return jax.lax.switch(code.kernel // 2, [at(k) for k in gt.KERNELS])
  return use


def fresh_cell_forward(key, code: codec.GenotypeCode, x, width: int):
  """One x2 cell of the code's kind (reference space) with parameters `draw_kind_params(key,
  kind, k)` drawn where they are used, at the kernel's own size: no flat vector, no 7 x 7 work
  (for scoring untrained candidates, where drawing and padding the flat parameters of every
  position cost more than the forward pass)."""
  branches = _kind_branches(width, lambda kind: lambda up, x: _kind_forward(
      kind, _fresh(key, kind, width, code), (None, None), code, up, x, False, fast=True))
  return jax.lax.switch(code.kind, branches, _shared_upsample(code, x, fast=True), x)


class DynamicNasDipNet(nasdip.CrossScaleBase):
  """The NAS-DIP network for any genotype: call it as `net(z, code)`.

  Cell parameters are a (9, flat_size) Param initialised for `code` (zeros if none is given;
  `init_cell_params` draws them for another code). `extended` adds dilation and PReLU.
  """

  def __init__(self, in_ch: int, out_ch: int, *, width: int = 128, pad: str = "reflection",
               conv_impl: str = "auto", code: codec.GenotypeCode | None = None,
               extended: bool = False, rngs: nnx.Rngs):
    self.width, self.extended = width, extended
    self._build_fixed(in_ch, out_ch, width, pad, conv_impl, rngs)
    if code is None:
      cell_params = jnp.zeros((nasdip.NUM_CELLS, flat_size(width, extended)), jnp.float32)
    else:
      cell_params = init_cell_params(rngs.params(), code, width, extended)
    self.cell_params = nnx.Param(cell_params)

  def __call__(self, z, code: codec.GenotypeCode):
    flat = self.cell_params[...]
    cell = lambda pos, x: cell_forward(flat[pos], code, x, self.width, self.extended)
    return self._forward(z, cell, nasdip.gated_sum(code.conn), all_chains=True)

  def fresh_cells_forward(self, z, code: codec.GenotypeCode, key, chains: str = "used"):
    """The output with cell parameters drawn from key instead of `cell_params` (reference
    space): position i's by `fresh_cell_forward` from `jax.random.split(key, 9)[i]`.
    chains: 'used' computes only the upward chains the code's connections use (forward only:
    no gradients; a position's parameters are drawn again for each chain it runs, at most ~3M
    numbers), and for activation-free (affine) cells stage 0's chains through one cell call
    (equal up to rounding), 'all' every chain."""
    keys = jax.random.split(key, nasdip.NUM_CELLS)
    cell = lambda pos, x: fresh_cell_forward(keys[pos], code, x, self.width)
    affine = code.act == codec.DYNAMIC_ACTIVATIONS.index("none")
    routes = (dict(used_chains=code.conn, affine_cells=affine) if chains == "used"
              else dict(all_chains=True))
    return self._forward(z, cell, nasdip.gated_sum(code.conn), **routes)


@dataclasses.dataclass(frozen=True)
class Builder:
  """`builder(key, code)`: a DynamicNasDipNet initialised from key for code. A value (equal
  settings, equal builders), so cohorts of equal recipes share one compiled program."""
  in_ch: int
  out_ch: int
  width: int = 128
  extended: bool = False

  def __call__(self, key, code: codec.GenotypeCode) -> DynamicNasDipNet:
    return DynamicNasDipNet(self.in_ch, self.out_ch, width=self.width, code=code,
                            extended=self.extended, rngs=nnx.Rngs(params=key))


def from_static(static: nasdip.NasDipNet, width: int, extended: bool = False
                ) -> DynamicNasDipNet:
  """A dynamic network computing the same function as `static` (same weights)."""
  in_ch, out_ch = static.enc[0].down.conv.kernel.shape[2], static.head.kernel.shape[-1]
  dyn = DynamicNasDipNet(in_ch, out_ch, width=width, extended=extended, rngs=nnx.Rngs(0))
  for name in ("enc", "same", "down", "dec", "head"):
    nnx.update(getattr(dyn, name), nnx.state(getattr(static, name)))
  dyn.cell_params[...] = jnp.stack([embed_static_cell(m, width, extended)
                                    for m in static.cell_modules()])
  return dyn
