"""The network-structure study's Tables 1-3 (`configs/study_*.py`), our values beside the study's:
at reduced scale (128-px crops, width 32, 1500 DIP steps), or at the study's (--scale=paper: the
whole images; on a CPU, for the classical methods: --methods=wiener,admm_tv_5e-3,...).

    python benchmarks/study.py [--tables=deconvolution,denoising,single_pixel]
        [--scale=reduced] [--workdir=/tmp/nasdip_study] [--methods=...]

Each table runs through `runs.study.run` in <workdir>/<table> (<workdir>/<table>_paper at the
study's scale; resumable: a rerun computes only the missing cells). Writes
benchmarks/results/study_<table>.json (study_<table>_paper.json) and its table in
benchmarks/README.md after each table.
"""

import json
import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from nasdip_jax.runs import study  # pylint: disable=wrong-import-position
from configs import study_deconvolution  # pylint: disable=wrong-import-position
from configs import study_denoising  # pylint: disable=wrong-import-position
from configs import study_single_pixel  # pylint: disable=wrong-import-position

CONFIGS = {"deconvolution": study_deconvolution, "denoising": study_denoising,
           "single_pixel": study_single_pixel}
_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_TABLES = flags.DEFINE_list("tables", list(CONFIGS), "Tables to run.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nasdip_study", "Parent of the tables' workdirs.")
_METHODS = flags.DEFINE_list("methods", [], "Methods (empty: every method of each table).")
_SCALE = flags.DEFINE_enum("scale", "reduced", tuple(study.SCALES), "The study's scale.")
report.choice_list(_TABLES, tuple(CONFIGS))


def main(argv):
  del argv
  for name in _TABLES.value:
    config = CONFIGS[name].get_config()
    config.update(data_dir=_DATA.value, scale=_SCALE.value)
    if _METHODS.value:
      config.methods = tuple(m for m in _METHODS.value if m in study.table_methods(name))
    key = name if _SCALE.value == "reduced" else f"{name}_{_SCALE.value}"
    summary = study.run(config, os.path.join(_WORKDIR.value, key))
    rows = report_rows(os.path.join(_WORKDIR.value, key))
    result = {"machine": report.machine(), "table": name, "scale": config.scale,
              "num_steps": summary["num_steps"], "crop_size": summary["crop_size"], "rows": rows}
    report.write_json(os.path.join(report.RESULTS, f"study_{key}.json"), result)
    report.update_readme_table(f"study_{key}", result["machine"], rows,
                               ["image", "level", "method", "psnr", "published", "difference",
                                "psnr_best", "psnr_stop", "ssim", "seconds"])


def report_rows(workdir: str) -> list:
  """The study's results.json rows with our PSNR minus the published one."""
  with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
    rows = json.load(f)
  for r in rows:
    r["difference"] = None if r["published"] is None else r["psnr"] - r["published"]
  return rows


if __name__ == "__main__":
  report.run(main)
