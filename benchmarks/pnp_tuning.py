"""Plug-and-play ADMM's settings on the study's single-pixel problems (Table 3 at reduced scale: the
64-px logo, Barbara's 128-px crop, compression 1-8): a fixed rho against continuation (rho grown
by a factor per round, the denoiser weakened), beside the study's value.

    python benchmarks/pnp_tuning.py [--denoisers=nlm] [--settings=0.05:30:1,0.02:100:1.05]

A setting is rho:rounds:growth (lambda 1e-3, the study config's); the first is the study
config's default. The problems are `runs.study`'s (same crops, rows and seed). Writes
benchmarks/results/pnp_tuning.json and its README table.
"""

import os
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from configs import study_single_pixel  # pylint: disable=wrong-import-position
from nasdip_jax import study_tables  # pylint: disable=wrong-import-position
from nasdip_jax.baselines import denoisers  # pylint: disable=wrong-import-position
from nasdip_jax.baselines import pnp_admm  # pylint: disable=wrong-import-position
from nasdip_jax.imaging import metrics  # pylint: disable=wrong-import-position
from nasdip_jax.runs import study  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_DENOISERS = flags.DEFINE_list("denoisers", ["nlm"], "Plug-and-play denoisers (nlm, bm3d).")
_SETTINGS = flags.DEFINE_list("settings", ["0.05:30:1", "0.02:100:1.05", "0.02:100:1.08"],
                              "rho:rounds:growth of each run.")
report.choice_list(_DENOISERS, ("nlm", "bm3d"))


def _parse(entry: str):
  """(rho, rounds, growth) of a rho:rounds:growth entry, or None if it is not one."""
  try:
    rho, rounds, growth = entry.split(":")
    out = float(rho), int(rounds), float(growth)
  except ValueError:
    return None
  return out if out[0] > 0 and out[1] >= 1 and out[2] >= 1 else None


flags.register_validator(_SETTINGS, lambda v: bool(v) and all(_parse(e) for e in v),
                         "--settings takes rho:rounds:growth entries (rho > 0, rounds >= 1, "
                         "growth >= 1)")


def main(argv):
  del argv
  config = study_single_pixel.get_config()
  config.data_dir = _DATA.value
  table = study.TABLES["single_pixel"]
  settings, rows = [_parse(e) for e in _SETTINGS.value], []
  for index, image in enumerate(table["images"]):
    clean = study.clean_image(config, image)
    for cf in table["levels"]:
      op, y, _ = study.problem_of(config, table, clean, cf, index)
      published = study_tables.published_row(table, image, cf)
      for name in _DENOISERS.value:
        for rho, rounds, growth in settings:
          t0 = time.perf_counter()
          result = pnp_admm.pnp_admm(op, y, None, denoisers.get(name), config.pnp_lambda, rho,
                                     rounds, rho_growth=growth)
          psnr = float(metrics.psnr(clean, np.clip(result.image[0], 0.0, 1.0)))
          rows.append({"image": image, "cf": cf, "denoiser": name, "rho": rho,
                       "rounds": rounds, "growth": growth, "psnr": psnr,
                       "published": published[name], "difference": psnr - published[name],
                       "seconds": time.perf_counter() - t0})
          print(rows[-1], flush=True)
  result = {"machine": report.machine(), "lambda": config.pnp_lambda, "rows": rows}
  report.write_json(os.path.join(report.RESULTS, "pnp_tuning.json"), result)
  report.update_readme_table("pnp_tuning", result["machine"], rows, list(rows[0]))


if __name__ == "__main__":
  report.run(main)
