"""A reduced-scale version of ISNAS-DIP's denoising comparison: DIP vs NAS-DIP's published model vs
ISNAS-DIP (`psd db strip mse`) vs the random-ranking baseline through the same pipeline.

    python benchmarks/isnas_reproduction.py [--images=01,02,03] [--crop=64] [--steps=1200]
        [--width=64] [--num_candidates=300] [--top_n=5] [--workdir=/tmp/isnas_repro]

Grayscale Set12 images (../shared/data), centre-cropped to --crop px, Gaussian noise sigma 25.
Every method runs --steps DIP steps with the denoising recipe (Adam 0.01, input noise 1/30,
EMA 0.99) and is scored by its final PSNR (the oracle best is listed beside it). DIP is the
skip network at width 128; NAS-DIP's published denoising model, the ISNAS candidates and the
random baseline use --width. ISNAS scores the first --num_candidates of the 5000-list on the
noisy image, trains the top --top_n per ranking, selects by weighted averaging and retrains the
selected genotype.
Every run resumes from --workdir (a finished DIP or NAS-DIP run is read back). After every image,
writes benchmarks/results/isnas_reproduction_<backend>.json and the table in benchmarks/README.md.
"""

import json
import os
import sys

from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.runs import isnas  # pylint: disable=wrong-import-position
from nasdip_jax.runs import restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data", os.path.join(os.path.dirname(report.HERE), "..", "shared",
                                                 "data"), "The test-set folder.")
_IMAGES = flags.DEFINE_list("images", ["01", "02", "03"], "Set12 image numbers.")
_CROP = flags.DEFINE_integer("crop", 64, "Centre crop (px).", lower_bound=32)
_STEPS = flags.DEFINE_integer("steps", 1200, "DIP steps of every method.", lower_bound=1)
_WIDTH = flags.DEFINE_integer("width", 64, "Width of the NAS-DIP-space networks (paper: 128).",
                              lower_bound=1)
_CANDIDATES = flags.DEFINE_integer("num_candidates", 300, "Candidates scored (paper: 5000).",
                                   lower_bound=1)
_TOP_N = flags.DEFINE_integer("top_n", 5, "Cohort size per ranking (paper: 15).", lower_bound=1)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/isnas_repro", "Where the runs live.")

RANKINGS = ("psd db strip mse", "random mse")


def _common(c, image):
  c.update(task="denoise", channels="gray", sigma=25.0, image=image, crop_size=_CROP.value,
           lr=0.01, ema_decay=0.99, num_steps=_STEPS.value,
           checkpoint_every=0)
  return c


def _restore(image, model, workdir):
  c = _common(restore.base_config(), image)
  c.model = model
  if model != "skip":
    c.net.channels_down = c.net.channels_up = (_WIDTH.value,) * 5
  c.input_depth = 32
  summary, config = os.path.join(workdir, "summary.json"), os.path.join(workdir, "config.json")
  if os.path.exists(summary) and _read(config) == json.loads(json.dumps(c.to_dict())):
    done = _read(summary)  # finished before
  else:
    done = restore.run(c, workdir)
  return done["psnr_final"], done["psnr_best"]


def _read(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _isnas(image, workdir):
  c = _common(isnas.base_config(), image)
  c.update(num_candidates=_CANDIDATES.value, width=_WIDTH.value, top_n=_TOP_N.value,
           resize_short_side=0, rank_by=RANKINGS)
  summary = isnas.run(c, workdir)
  return {m: (summary["metrics"][m]["psnr_final"], summary["metrics"][m]["psnr_best"])
          for m in RANKINGS}, summary


def main(argv):
  del argv
  rows = []
  for number in _IMAGES.value:
    image = os.path.join(_DATA.value, "Set12", f"{number}.png")
    out = os.path.join(_WORKDIR.value, number)
    ranked, summary = _isnas(image, os.path.join(out, "isnas"))
    finals = {"dip": _restore(image, "skip", os.path.join(out, "dip")),
              "nasdip": _restore(image, "nasdip_denoise", os.path.join(out, "nasdip")),
              "isnas_psd_db_strip_mse": ranked["psd db strip mse"],
              "random_ranking": ranked["random mse"]}
    row = {"image": f"Set12/{number}", "psnr_noisy": summary["psnr_input"],
           **{k: v[0] for k, v in finals.items()},  # the comparison: final PSNR
           **{f"{k}_best": v[1] for k, v in finals.items()}}  # the oracle, for reference
    rows.append(row)
    print(row, flush=True)
    _write(rows)


def _write(rows):
  """The JSON and README table of the images done so far (and their mean)."""
  methods = [k for k in rows[0] if k != "image"]
  rows = rows + [{"image": "mean", **{k: float(np.mean([r[k] for r in rows])) for k in methods}}]
  result = {"machine": report.machine(), "settings": {
      "task": "denoise sigma 25, grayscale", "crop": _CROP.value, "steps": _STEPS.value,
      "width": _WIDTH.value, "num_candidates": _CANDIDATES.value, "top_n": _TOP_N.value,
      "psnr": "final step (EMA 0.99); *_best: the oracle best over the steps"}, "rows": rows}
  name = f"isnas_reproduction_{jax.default_backend()}"
  report.write_json(os.path.join(report.RESULTS, name + ".json"), result)
  report.update_readme_table(name, result["machine"], rows, ["image"] + methods)

if __name__ == "__main__":
  report.run(main)
