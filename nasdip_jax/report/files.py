"""Writers for a run's workdir; every whole-file write is atomic (temp file, then rename)."""

import csv
import io
import json
import os
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from nasdip_jax.errors import UserError  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import io as image_io  # pylint: disable=wrong-import-position


def strict(obj):
  """obj with every NaN or infinite float (numpy's too) as None: strict JSON has neither (a
  PSNR of identical images, an undefined rate); containers are walked."""
  if isinstance(obj, dict):
    return {k: strict(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [strict(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return strict(obj.tolist())
  if isinstance(obj, np.generic):
    obj = obj.item()
  if isinstance(obj, float) and not np.isfinite(obj):
    return None
  return obj


def dumps(obj, **kwargs) -> str:
  """Strict JSON of obj (`strict`: non-finite floats as null)."""
  return json.dumps(strict(obj), allow_nan=False, **kwargs)


def write_json(path: str, obj) -> None:
  text = dumps(obj, indent=1, sort_keys=True) + "\n"
  image_io.atomic_write(path, lambda f: f.write(text.encode()))


def changed_settings(saved: dict, now: dict, may_change=()) -> list:
  """The fields (sorted) whose values differ between a workdir's saved config.json and the
  config dict `now` (compared as JSON), other than those in `may_change`."""
  now = json.loads(dumps(now))
  return sorted(k for k in set(saved) | set(now)
                if k not in may_change and saved.get(k) != now.get(k))


def write_csv(path: str, header, rows) -> None:
  """A CSV table; floats written with repr (exact round trip)."""
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(header)
  for row in rows:
    w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])
  image_io.atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def write_markdown_table(path: str, header, rows) -> None:
  """A markdown table (floats to 3 decimals, None as an empty cell)."""
  cell = lambda v: "" if v is None else f"{v:.3f}" if isinstance(v, (float, np.floating)) else (
      "x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v))
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
  text = "\n".join(lines) + "\n"
  image_io.atomic_write(path, lambda f: f.write(text.encode()))


class MetricsWriter:
  """Appends one JSON object per line to metrics.jsonl (flushed per line)."""

  def __init__(self, path: str):
    self._f = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def write(self, step: int, **values) -> None:
    row = {"step": int(step), **{k: float(v) for k, v in values.items()}}
    self._f.write(dumps(row) + "\n")
    self._f.flush()

  def close(self) -> None:
    self._f.close()


def _save_figure(fig, path: str) -> None:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  plt.close(fig)
  image_io.atomic_write(path, lambda f: f.write(buf.getvalue()))


def _show(ax, title: str, img) -> None:
  img = np.clip(np.asarray(img), 0, 1)
  if img.shape[-1] == 1:
    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
  else:
    ax.imshow(img, interpolation="nearest")
  ax.set_title(title, fontsize=9)
  ax.axis("off")


def side_by_side(path: str, panels) -> None:
  """Saves [(title, (H, W, C) image in [0, 1])] as one row of panels."""
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
  for ax, (title, img) in zip(np.atleast_1d(axes), panels):
    _show(ax, title, img)
  _save_figure(fig, path)


def image_grid(path: str, rows) -> None:
  """Saves rows of [(title, (H, W, C) image in [0, 1])] (equal lengths) as a grid."""
  n, m = len(rows), len(rows[0])
  fig, axes = plt.subplots(n, m, figsize=(2.4 * m, 2.6 * n), squeeze=False)
  for r, row in enumerate(rows):
    for c, (title, img) in enumerate(row):
      _show(axes[r, c], title, img)
  _save_figure(fig, path)


def _line_axes(curves: dict, xlabel: str, ylabel: str, title: str):
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for name, values in curves.items():
    ax.plot(np.arange(len(values)), values, lw=1, label=name)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  return fig, ax


def psnr_curve(path: str, curves: dict, best_step: int, title: str,
               stop_step: Optional[int] = None, stop: str = "") -> None:
  """Plots PSNR per step for each named curve, marking the oracle-best step (and the early stop
  `stop`'s step)."""
  fig, ax = _line_axes(curves, "step", "PSNR (dB)", title)
  ax.axvline(best_step, color="gray", ls=":", lw=1, label=f"best step {best_step}")
  if stop_step is not None:
    ax.axvline(stop_step, color="C3", ls="--", lw=1, label=f"{stop} stop {stop_step}")
  ax.legend(fontsize=8)
  _save_figure(fig, path)


def stopping_curve(path: str, signal, label: str, loss, stop_step: int, title: str,
                   level: Optional[float] = None) -> None:
  """A stopping criterion's signal and the data-fit loss per step (log scales), marking the stop
  (and the level the signal stops at, if it has one)."""
  fig, ax = plt.subplots(figsize=(6, 3.5))
  steps = np.arange(len(loss))
  ax.semilogy(steps, signal, lw=1, color="C3", label=label)
  ax.axvline(stop_step, color="C3", ls="--", lw=1, label=f"stop {stop_step}")
  if level is not None:
    ax.axhline(level, color="C3", ls=":", lw=1, label=f"noise level {level:.3g}")
  ax.set_xlabel("step")
  ax.set_ylabel(label)
  ax.grid(alpha=0.3)
  other = ax.twinx()
  other.semilogy(steps, loss, lw=1, color="C0", alpha=0.7, label="loss")
  other.set_ylabel("loss")
  handles = ax.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
  ax.legend(handles=handles, fontsize=8)
  ax.set_title(title, fontsize=9)
  _save_figure(fig, path)


def line_plot(path: str, curves: dict, xlabel: str, ylabel: str, title: str) -> None:
  """Plots each named 1-D series against its index (NaN points are left out)."""
  fig, ax = _line_axes(curves, xlabel, ylabel, title)
  ax.legend(fontsize=8)
  _save_figure(fig, path)


def regularisation_figure(path: str, targets, regularisers, curves: dict) -> None:
  """The regularisation study's figure: a row per target, the loss (log scale) and the PSNR
  against the target per regulariser (dashed: against the clean image, for the noisy target);
  curves['target/regulariser/metric'] as dip.STEP_METRICS."""
  fig, axes = plt.subplots(len(targets), 2, figsize=(10, 2.8 * len(targets)), squeeze=False)
  for row, t in enumerate(targets):
    loss_ax, psnr_ax = axes[row]
    for i, reg in enumerate(regularisers):
      colour = f"C{i}"
      loss = curves[f"{t}/{reg}/loss"]
      loss_ax.semilogy(np.arange(len(loss)), loss, lw=1, color=colour, label=reg)
      psnr_ax.plot(curves[f"{t}/{reg}/psnr_obs"], lw=1, color=colour, label=f"{reg} vs target")
      if t == "noisy":
        psnr_ax.plot(curves[f"{t}/{reg}/psnr"], lw=1, ls="--", color=colour,
                     label=f"{reg} vs clean")
    loss_ax.set_title(f"{t}: loss", fontsize=9)
    psnr_ax.set_title(f"{t}: PSNR (dB)", fontsize=9)
    for ax in (loss_ax, psnr_ax):
      ax.set_xlabel("step")
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
  fig.tight_layout()
  _save_figure(fig, path)


def histogram(path: str, values, markers: dict, xlabel: str, title: str) -> None:
  """A 30-bin histogram of values with named vertical markers {label: (x, colour)}."""
  fig, ax = plt.subplots(figsize=(6, 3.5))
  ax.hist(np.asarray(values), bins=30, color="0.7")
  for label, (x, color) in markers.items():
    ax.axvline(x, color=color, ls="--" if label == "selected" else "-", label=label)
  ax.set_xlabel(xlabel)
  ax.set_ylabel("count")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7)
  _save_figure(fig, path)


def save_curves(path: str, curves: dict) -> None:
  buf = io.BytesIO()
  np.savez_compressed(buf, **curves)
  image_io.atomic_write(path, lambda f: f.write(buf.getvalue()))


def check_workdir(path: str) -> None:
  """UserError unless `path` is a directory, or one that can be made (its nearest existing
  ancestor a writable directory); creates nothing."""
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UserError(f"--workdir {path} is a file, not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
      raise UserError(f"--workdir {path} is not writable")
    return
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f"--workdir {path} cannot be created ({parent} is not a writable directory)")


def make_workdir(path: str) -> None:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise UserError(f"--workdir {path} cannot be created: {e.strerror}") from None
