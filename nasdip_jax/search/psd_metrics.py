"""ISNAS-DIP's training-free metrics: power spectral densities of a network's random output
against the corrupted image, as pure jittable functions batched over candidates.

A metric name is the reference's chain (ISNAS-DIP utils/funcs.py): every token but the last is a
transformation applied to both operands, the last a loss (`mse`, `emd`); a low-pass metric is a
chain applied to the output alone that ends in `<p>_per_bw` or `<c>_db_bw`. Lower is better for
every metric. Arrays are NHWC: the image (1, H, W, C), outputs (B, H, W, C); each metric returns
(B,) values.

Reference semantics kept for parity: PSD = |fft2(x, norm='forward')|^2 centred (on the spatial
axes only: the reference's all-axes fftshift merely rolls channels); "db" = 10 * natural log, no
epsilon; `nodc` subtracts one mean over C, H, W; the strip is 0.05 <= r < 0.1 in per-axis
normalised frequency; `hist` is np.histogram(density=True, 100 bins) over each array's own range;
`emd` is the 1-D Wasserstein distance between the two sets of 100 histogram *heights*.
Corrected variants, named apart: `hist_shared` (both operands binned on one set of edges over
the range of both) with `emd_bins` (Wasserstein distance between the two histograms as
distributions over bin centres: the W1 distance of the two sets of values, to within a bin).

Precision: float32 (complex64 FFT) by default, within 2e-4 relative of the reference (2e-2 for
the histograms of dB values, whose bins move under round-off); inside `jax.enable_x64(True)` the
FFT runs in float64 and matches it to 1e-9 (5e-8 after `nodc`, which stays in the input's float32
as in the reference). Tested against the reference's values in tests/test_psd_metrics.py.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

SIMILARITY_METRICS = (
    "psd db mse", "psd db strip mse", "nodc psd db mse", "nodc psd strip mse",
    "nodc psd db strip mse", "psd db hist emd", "nodc psd hist emd", "nodc psd db hist emd",
    "psd strip hist emd")
LOWPASS_METRICS = ("psd 99_per_bw", "nodc psd 75_per_bw", "nodc psd db 50_db_bw",
                   "psd 70_per_bw")
RANDOM_METRIC = "random mse"
CORRECTED_METRICS = ("psd strip hist_shared emd_bins", "psd db hist_shared emd_bins")
ISNAS_METRICS = ("psd db strip mse", "psd strip hist emd")  # what the reference pipeline ranks by
BINS = 100
NUM_DISCS = 99
TRANSFORMS = ("psd", "db", "nodc", "strip", "hist", "hist_shared")
LOSSES = ("mse", "emd", "emd_bins")


def _float():
  return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


# ---------------------------------------------------------------- transformations

def psd(x):
  """(..., H, W, C) -> power spectrum per channel, DC at [H // 2, W // 2]."""
  f = jnp.fft.fft2(x.astype(_float()), axes=(-3, -2), norm="forward")
  return jnp.fft.fftshift(jnp.square(jnp.abs(f)), axes=(-3, -2))


def db(p):
  return 10.0 * jnp.log(p)


def nodc(x):
  """Subtracts each sample's mean over H, W and C (in the input's precision)."""
  return x - jnp.mean(x, axis=(-3, -2, -1), keepdims=True)


def _radius2(h: int, w: int) -> np.ndarray:
  y = np.arange(h)[:, None] / h - 0.5
  x = np.arange(w)[None, :] / w - 0.5
  return x * x + y * y


def circle_mask(h: int, w: int, diameter: float) -> np.ndarray:
  """x^2 + y^2 < (d/2)^2 with x = j/W - 1/2, y = i/H - 1/2 (utils/masks.py circle_mask)."""
  return _radius2(h, w) < (diameter / 2) ** 2


def strip_mask(h: int, w: int) -> np.ndarray:
  """The reference strip: circle(0.2) XOR circle(0.1), i.e. 0.05 <= r < 0.1."""
  return circle_mask(h, w, 0.2) ^ circle_mask(h, w, 0.1)


def strip(x):
  """(B, H, W, C) -> (B, n * C): the strip's values, channel-major as the reference's."""
  rows, cols = np.nonzero(strip_mask(x.shape[-3], x.shape[-2]))
  v = x[..., rows, cols, :]                   # (B, n, C)
  return jnp.swapaxes(v, -1, -2).reshape(v.shape[:-2] + (-1,))


def _edges(lo, hi):
  """np.histogram's edges for range (lo, hi): a zero range widens to (lo - 0.5, hi + 0.5)."""
  same = lo == hi
  lo, hi = jnp.where(same, lo - 0.5, lo), jnp.where(same, hi + 0.5, hi)
  return jnp.linspace(lo, hi, BINS + 1, axis=-1)


def _bin_counts(v, edges):
  """np.histogram's counts of v (n,) on uniform edges (BINS + 1,), with its edge corrections;
  values outside the edges are dropped."""
  lo, hi = edges[0], edges[-1]
  idx = jnp.floor((v - lo) * (BINS / (hi - lo))).astype(jnp.int32)
  idx = jnp.where(idx == BINS, BINS - 1, idx)
  inside = (v >= lo) & (v <= hi)
  idx = jnp.clip(idx, 0, BINS - 1)
  idx = jnp.where(v < edges[idx], idx - 1, idx)
  idx = jnp.where((v >= edges[jnp.minimum(idx + 1, BINS)]) & (idx != BINS - 1), idx + 1, idx)
  return jnp.zeros(BINS, v.dtype).at[idx].add(inside.astype(v.dtype))


def _density(counts, edges):
  return counts / jnp.sum(counts) / jnp.diff(edges)


def histogram(v):
  """(n,) -> (heights (BINS,), edges (BINS + 1,)): np.histogram(v, BINS, density=True)."""
  edges = _edges(jnp.min(v), jnp.max(v))
  return _density(_bin_counts(v, edges), edges), edges


def hist(x):
  """(B, n) -> (B, BINS) density heights, each row on its own min..max range."""
  return jax.vmap(lambda v: histogram(v)[0])(x.reshape(x.shape[0], -1))


def shared_hist(img, out):
  """The corrected variant's histograms: img (1, ...) and each candidate's out (B, ...) counted
  on one set of BINS edges spanning both of their values, so nothing falls outside (an untrained
  network's strip PSD often lies wholly below the image's). -> (img counts (B, BINS), out counts
  (B, BINS), bin widths (B,))."""
  v = img.reshape(-1)

  def pair(row):
    edges = _edges(jnp.minimum(jnp.min(v), jnp.min(row)), jnp.maximum(jnp.max(v), jnp.max(row)))
    return _bin_counts(v, edges), _bin_counts(row, edges), edges[1] - edges[0]
  return jax.vmap(pair)(out.reshape(out.shape[0], -1))


# ---------------------------------------------------------------- losses

def mse(img, out):
  """Mean squared difference per candidate: img (1, ...), out (B, ...) -> (B,)."""
  return jnp.mean(jnp.square(out - img).reshape(out.shape[0], -1), axis=-1)


def wasserstein_samples(u, v):
  """scipy.stats.wasserstein_distance(u, v) for two samples of one size, equal weights."""
  return jnp.mean(jnp.abs(jnp.sort(u, axis=-1) - jnp.sort(v, axis=-1)), axis=-1)


def emd(img_heights, out_heights):
  """The reference `emd`: the heights themselves as samples. (1, BINS), (B, BINS) -> (B,)."""
  return wasserstein_samples(jnp.broadcast_to(img_heights, out_heights.shape), out_heights)


def wasserstein_bins(p, q, width):
  """W1 between two histograms (..., BINS) on shared bins of width (...) (the CDF-difference
  integral)."""
  cdf = lambda h: jnp.cumsum(h / jnp.sum(h, axis=-1, keepdims=True), axis=-1)
  return jnp.sum(jnp.abs(cdf(p) - cdf(q)), axis=-1) * width


# ---------------------------------------------------------------- chains

def parse(name: str):
  """(kind, tokens): kind 'similarity' (transformations + loss), 'lowpass' or 'random'."""
  tokens = name.split()
  if not tokens:
    raise ValueError("empty metric name")
  if name == RANDOM_METRIC:
    return "random", tokens
  last = tokens[-1]
  if last.endswith("_per_bw") or last.endswith("_db_bw"):
    kind, body = "lowpass", tokens[:-1]
    float(last.split("_")[0])  # the number must parse
  elif last in LOSSES:
    kind, body = "similarity", tokens[:-1]
  else:
    raise ValueError(f"metric {name!r} must end in a loss {LOSSES} or a *_per_bw / *_db_bw")
  unknown = [t for t in body if t not in TRANSFORMS]
  if unknown:
    raise ValueError(f"metric {name!r}: unknown transformations {unknown}; known {TRANSFORMS}")
  if ("hist_shared" in body) != (last == "emd_bins"):
    raise ValueError(f"metric {name!r}: hist_shared goes with emd_bins")
  return kind, tokens


def check_size(names, h: int, w: int) -> None:
  """Raises ValueError if a metric of `names` cannot be computed on an (h, w) image: the strip
  (0.05 <= r < 0.1) holds no frequency of a small one (8 x 8 and below, 15 x 15, ...)."""
  for name in names:
    if "strip" in parse(name)[1] and not strip_mask(h, w).any():
      raise ValueError(f"metric {name!r} needs a larger observation: its strip "
                       f"(0.05 <= r < 0.1 in normalised frequency) holds no frequency of "
                       f"{h}x{w} (for SR, the low-resolution image)")


def _similarity(tokens, img, out):
  for t in tokens[:-1]:
    if t == "hist":
      img, out = hist(img), hist(out)
    elif t == "hist_shared":
      img, out, width = shared_hist(img, out)
    else:
      fn = {"psd": psd, "db": db, "nodc": nodc, "strip": strip}[t]
      img, out = fn(img), fn(out)
  loss = tokens[-1]
  if loss == "mse":
    return mse(img, out)
  if loss == "emd":
    return emd(img, out)
  return wasserstein_bins(img, out, width)


def disc_diameters() -> np.ndarray:
  return np.linspace(0, math.sqrt(2), NUM_DISCS + 1)[1:]


def disc_energies(p):
  """(B, H, W) channel-averaged PSD -> (B, 99) energy inside each disc d_k = k sqrt(2) / 99."""
  h, w = p.shape[-2:]
  masks = np.stack([circle_mask(h, w, d) for d in disc_diameters()]).astype(np.float64)
  return jnp.einsum("bhw,khw->bk", p, jnp.asarray(masks, p.dtype))


def per_bw(p, fraction: float):
  """Normalised diameter holding `fraction` of the energy (linear between discs), (B,).

  The reference's E_j >= f * total and (f * total - E_{j-1}) / (E_j - E_{j-1}), computed from
  the energy outside each disc and inside each ring, which float32 keeps accurate."""
  h, w = p.shape[-2:]
  discs = np.stack([circle_mask(h, w, d) for d in disc_diameters()])
  rings = discs & ~np.concatenate([np.zeros((1, h, w), bool), discs[:-1]])
  total = jnp.sum(p, axis=(-2, -1))
  outside = jnp.einsum("bhw,khw->bk", p, jnp.asarray(~discs, p.dtype))
  ring = jnp.einsum("bhw,khw->bk", p, jnp.asarray(rings, p.dtype))
  rest = (1.0 - fraction) * total
  j = jnp.argmax(outside <= rest[:, None], axis=-1)
  take = lambda a, i: jnp.take_along_axis(a, i[:, None], axis=-1)[:, 0]
  outside_prev = jnp.where(j > 0, take(outside, jnp.maximum(j - 1, 0)), total)
  return (j + (outside_prev - rest) / take(ring, j)) / NUM_DISCS


def db_bw(d, drop: float):
  """Fraction of pixels of the channel-averaged dB map above its max - drop, (B,)."""
  top = jnp.max(d, axis=(-2, -1), keepdims=True)
  return jnp.mean((d > top - drop).astype(d.dtype), axis=(-2, -1))


def _lowpass(tokens, out):
  for t in tokens[:-1]:
    out = {"psd": psd, "db": db, "nodc": nodc}[t](out)
  out = jnp.mean(out, axis=-1)  # channel average (to_gray 'Avg')
  number, kind = tokens[-1].split("_", 1)
  if kind == "per_bw":
    return per_bw(out, float(number) / 100)
  return db_bw(out, float(number))


@functools.partial(jax.jit, static_argnames=("name",))
def metric(name: str, image, outputs, key=None):
  """Metric `name` of outputs (B, H, W, C) against image (1, H, W, C) -> (B,); lower is better.

  Low-pass metrics ignore the image; `random mse` draws Gaussian stand-ins for both from `key`
  (ISNAS-DIP's random-ranking baseline).
  """
  kind, tokens = parse(name)
  if kind == "similarity":
    return _similarity(tokens, image, outputs)
  if kind == "lowpass":
    return _lowpass(tokens, outputs)
  k_img, k_out = jax.random.split(key)
  img = jax.random.normal(k_img, image.shape, _float())
  out = jax.random.normal(k_out, outputs.shape, _float())
  return mse(img, out)
