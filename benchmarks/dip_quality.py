"""Reduced-scale quality check: DIP denoising (sigma 25) and SR x4 at the reference recipes
(3000 / 2000 steps) on centre crops of standard test images; final and oracle-best PSNR.

    python benchmarks/dip_quality.py [--crop=64] [--data_dir=../shared/data]

Writes benchmarks/results/dip_quality_<crop>px.json and the table in benchmarks/README.md, so
later changes can be compared. The crop keeps it within ~30 minutes on a 2-core CPU.
"""

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from configs import denoise, sr4x  # pylint: disable=wrong-import-position
from nasdip_jax.runs import restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_CROP = flags.DEFINE_integer("crop", 64, "Centre crop (px) of each image.", lower_bound=32)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nasdip_quality", "Where the runs write.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every run.")

CASES = [("denoise", denoise, "Set9/image_F16_512rgb.png"),
         ("denoise", denoise, "Set9/image_House256rgb.png"),
         ("denoise", denoise, "Set9/image_Peppers512rgb.png"),
         ("sr4x", sr4x, "Set5/baby.png"),
         ("sr4x", sr4x, "Set5/bird.png"),
         ("sr4x", sr4x, "Set5/butterfly.png")]


def main(argv):
  del argv
  rows = []
  for name, module, image in CASES:
    config = module.get_config()
    config.image = os.path.join(_DATA.value, image)
    config.crop_size = _CROP.value
    config.seed = _SEED.value
    workdir = os.path.join(_WORKDIR.value, f"{name}_{os.path.basename(image)[:-4]}")
    s = restore.run(config, workdir)
    rows.append({"task": name, "image": image, "px": _CROP.value, "steps": s["steps"],
                 "psnr_input": s["psnr_input"], "psnr_final": s["psnr_final"],
                 "psnr_best": s["psnr_best"], "best_step": s["best_step"],
                 "ssim_final": s["ssim_final"], "ssim_best": s["ssim_best"],
                 "steps_per_sec": s["steps_per_sec"], "wall_seconds": s["wall_seconds"]})
    print(rows[-1], flush=True)
  result = {"machine": report.machine(), "seed": _SEED.value, "rows": rows}
  report.write_json(os.path.join(report.RESULTS, f"dip_quality_{_CROP.value}px.json"), result)
  report.update_readme_table(f"dip_quality_{_CROP.value}px", result["machine"], rows,
                             ["task", "image", "px", "steps", "psnr_input", "psnr_final",
                              "psnr_best", "best_step", "ssim_final", "ssim_best"])


if __name__ == "__main__":
  report.run(main)
